"""The long fuzz run of the judge: every property of tests/harness/sandbox/test_fuzz.py, with fresh seeds and
more examples, plus heavier hostile values than the default suite can afford, until the time is up.

    .venv/bin/python tests/perf/fuzz_judge.py --minutes 10 [--examples 300] [--seed 1]

Prints one line per property per round and, at the end, every failure with its falsifying example (the
shrunk one Hypothesis reports). Exits 1 if any property failed. Run it as root, as the suite runs the sandbox.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from execrl.harness.records import Verdict  # noqa: E402
from execrl.harness.sandbox import wire  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import seed as with_seed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.harness.sandbox import test_fuzz as fuzz  # noqa: E402

# --- heavier hostile values: tens of thousands of items, colliding members spread over nested containers ---

P = fuzz.P
MEMBERS = [
    lambda r: {"I": hex(r.randrange(1, 10**9) * P)},  # hash 0
    lambda r: {"T": [{"I": hex(r.randrange(1, 10**9) * P)}, 0]},  # tuples hashing alike
    lambda r: r.randrange(-(2**40), 2**40), lambda r: r.choice([-1, -2, 0, "a", 2.5]),
    lambda r: {"Z": [r.randrange(-(2**40), 2**40)]},
]  # fmt: skip
WRAPPERS = [lambda c: c, lambda c: {"T": c}, lambda c: {"Z": c}, lambda c: {"S": c},
            lambda c: {"D": [[i, v] for i, v in enumerate(c)]}]  # fmt: skip


@st.composite
def big_values(draw) -> object:
    """Up to 100,000 members (a mix of colliding and honest ones) in containers of 1 to 2,000, nested up to 6
    deep. Built from a drawn random generator: Hypothesis cannot draw that many values one by one."""
    r = draw(st.randoms(use_true_random=False))
    kinds = draw(st.lists(st.integers(0, len(MEMBERS) - 1), min_size=1, max_size=len(MEMBERS)))
    level = [MEMBERS[r.choice(kinds)](r) for _ in range(draw(st.integers(100, 100_000)))]
    for _ in range(draw(st.integers(1, 6))):
        size, wrap = draw(st.integers(1, 2000)), draw(st.sampled_from(WRAPPERS))
        level = [wrap(level[i : i + size]) for i in range(0, len(level), size)]
    return level


def decodes_or_refuses_quickly(data) -> None:
    start = time.perf_counter()
    try:
        wire.decode(data)
    except wire.WireError:
        pass
    assert time.perf_counter() - start < fuzz.DECODE_SECONDS


def big_replies_are_never_passed_nor_a_sandbox_error(data) -> None:
    """The same values as replies forged by a sandboxed program, through the whole judge."""
    frame = json.dumps({"ok": data}).encode()
    assert fuzz._judged(fuzz.ASSERTS, fuzz.REPLIER.format(frame=frame)) not in (Verdict.PASSED, Verdict.SANDBOX_ERROR)


PROPERTIES = {name: test.execrl_fuzz for name, test in vars(fuzz).items() if hasattr(test, "execrl_fuzz")}
PROPERTIES["big hostile values decode or are refused quickly"] = (decodes_or_refuses_quickly, (big_values(),), True)
PROPERTIES["big hostile replies are never passed nor a sandbox_error"] = (
    big_replies_are_never_passed_nor_a_sandbox_error, (big_values(),), True)  # fmt: skip


def run(check, strategies, slow: bool, seed: int, examples: int) -> tuple[float, str | None]:
    """Run one property with `seed` (a sixth of the examples if each is `slow`): (seconds, failure or None)."""
    n = max(1, examples // 6) if slow else examples
    test = with_seed(seed)(settings(fuzz.FAST, max_examples=n, derandomize=False)(given(*strategies)(check)))
    start = time.perf_counter()
    try:
        test()
    except Exception as exc:  # noqa: BLE001 - a failing property is the finding we report
        notes = "\n".join(getattr(exc, "__notes__", []))
        return time.perf_counter() - start, f"{notes}\n{''.join(traceback.format_exception_only(exc))}"
    return time.perf_counter() - start, None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--examples", type=int, default=300, help="examples per property per round")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    stop = time.monotonic() + args.minutes * 60
    failures: list[tuple[str, int, str]] = []
    rounds = 0
    while time.monotonic() < stop:
        for name, (check, strategies, slow) in PROPERTIES.items():
            if time.monotonic() >= stop:
                break
            seed = args.seed + rounds
            seconds, failure = run(check, strategies, slow, seed, args.examples)
            print(f"round {rounds} seed {seed} {name}: {'FAILED' if failure else 'ok'} ({seconds:.1f} s)", flush=True)
            if failure:
                failures.append((name, seed, failure))
        rounds += 1
    print(f"\n{rounds} rounds of {len(PROPERTIES)} properties, {len(failures)} failures")
    for name, seed, failure in failures:
        print(f"\n--- {name} (seed {seed}) ---\n{failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
