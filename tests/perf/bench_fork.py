"""The fork floor: CPU per fork + exit + wait of a zygote-like `python -I -S`, by what it has imported.

Every program the local sandbox runs costs one fork of the zygote plus the child's exit, and both scale
with the zygote's memory (page tables copied at fork, torn down at exit). This prints the CPU of one
fork cycle, and the page faults a child takes before its first line of Python, for:
- bare: the interpreter alone (the reference);
- sandbox: what `execrl.harness.sandbox.child` itself imports (ctypes, json, socket, traceback...);
- preload: that plus `execrl.harness.sandbox.child.PRELOAD`, i.e. the zygote as it runs;
- old preload: the larger list used before 2026-11-21 (dataclasses, decimal, hashlib, random...).

    .venv/bin/python tests/perf/bench_fork.py [--forks 1000] [--rounds 7]

Figures are the median of `rounds` rounds; the machine's load moves them, so compare within one run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from execrl.harness.sandbox.isolation import import_prelude

ROOT = Path(__file__).resolve().parents[2]
OLD_PRELOAD = ("array bisect cmath collections copy dataclasses datetime decimal enum fractions functools hashlib "
               "heapq io itertools math numbers operator random re statistics string struct textwrap time typing "
               "unicodedata").split()  # fmt: skip

MEASURE = r"""
import gc, json, os, resource, sys, time
exec(PRELUDE)
if CONFIG != "bare":
    import execrl.harness.sandbox.child as child
    for name in {"sandbox": (), "preload": child.PRELOAD, "old preload": OLD}[CONFIG]:
        __import__(name)
gc.collect(); gc.freeze()

def cpu():
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime

rounds = []
for _ in range(ROUNDS):
    start = cpu()
    for _ in range(FORKS):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    rounds.append((cpu() - start) / FORKS)
faults = []
for _ in range(101):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, str(resource.getrusage(resource.RUSAGE_SELF).ru_minflt).encode())
        os._exit(0)
    os.close(w)
    faults.append(int(os.read(r, 64)))
    os.close(r)
    os.waitpid(pid, 0)
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
print(json.dumps({"ms": 1e3 * sorted(rounds)[len(rounds) // 2], "faults": sorted(faults)[50],
                  "anon_kb": int(status["RssAnon"].split()[0]), "maps": len(open("/proc/self/maps").readlines())}))
"""


def measure(config: str, forks: int, rounds: int) -> dict[str, float]:
    prelude = import_prelude(repr(str(ROOT)))
    setup = f"PRELUDE, CONFIG, OLD, FORKS, ROUNDS = {prelude!r}, {config!r}, {OLD_PRELOAD!r}, {forks}, {rounds}\n"
    code = setup + MEASURE
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    results = {c: measure(c, args.forks, args.rounds) for c in ("bare", "sandbox", "preload", "old preload")}
    reference = results["bare"]["ms"]
    print(f"{'zygote':12s} {'anon MB':>8s} {'maps':>5s} {'fork+exit ms':>13s} {'vs bare':>8s} {'child faults':>13s}")
    for config, r in results.items():
        print(
            f"{config:12s} {r['anon_kb'] / 1024:8.1f} {r['maps']:5d} {r['ms']:13.3f} {r['ms'] / reference:7.2f}x "
            f"{r['faults']:13d}"
        )


if __name__ == "__main__":
    main()
