"""A sweep for state one program leaves for the next: what in /proc and /sys a "noisy" program changes
for the program that follows it on the same worker, beyond what time alone changes.

From inside the sandbox, a reader program snapshots every file it can read under /proc (its own process
as /proc/self, with /proc/self/net: the network namespace its zygote's children share; no other pid) and
/sys, plus a few counters no file shows (the inode number a new file gets in scratch and /dev/shm, a
new pipe's). Rounds alternate a noisy program (forks, files, sockets, packets, IPC, locks, many of each)
and quiet ones, one of which sleeps as long as the noisy one ran, between two snapshots; a file is reported
when the noisy program moves it further than any quiet round does (`differences`). Stdlib and the project
only: test_degraded.py runs it as `nobody`.

    .venv/bin/python -m tests.harness.sandbox.state_sweep [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable

from execrl.harness.records import Limits

LIMITS = Limits(timeout=20.0, program_timeout=20.0, memory=1024**3)
REPEATS = 300
"""How many of each action the noisy program takes: a counter it moves shows a change of this size."""
MARGIN = 100
"""A number moved by the noisy program less than twice the quiet rounds' largest move plus this is noise."""

SNAPSHOT = r"""
import json, os, stat, time

SKIP = {"/proc/self/mem", "/proc/self/pagemap", "/proc/self/clear_refs", "/proc/kmsg", "/proc/kcore",
        "/proc/self/task", "/proc/self/map_files", "/proc/self/fd", "/proc/self/fdinfo", "/proc/self/cwd",
        "/proc/self/root", "/proc/self/exe", "/proc/sysrq-trigger"}

def snapshot():
    out, deadline = {}, time.monotonic() + 12
    stack = ["/sys", "/proc"]
    while stack and len(out) < 40000 and time.monotonic() < deadline:
        top = stack.pop()
        try:
            entries = sorted(os.scandir(top), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            path = entry.path
            if path in SKIP or (top == "/proc" and (entry.name.isdigit() or entry.name == "thread-self")):
                continue  # other pids; our own is /proc/self
            try:
                if entry.is_symlink():
                    if path == "/proc/self" or path.startswith("/proc/self/ns/"):
                        out[path] = os.readlink(path)
                        if path == "/proc/self":
                            stack.append(path)
                    continue
                if entry.is_dir():
                    stack.append(path)
                elif entry.is_file() and os.access(path, os.R_OK):
                    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
                    try:
                        out[path] = os.read(fd, 8192).decode("latin-1")
                    finally:
                        os.close(fd)
            except OSError:
                pass
    for where in (".", "/dev/shm"):
        try:
            with open(f"{where}/sweep-probe", "w") as f:
                out[f"probe: inode of a new file in {where}"] = str(os.fstat(f.fileno()).st_ino)
            os.unlink(f"{where}/sweep-probe")
        except OSError:
            pass
    r, w = os.pipe()
    out["probe: inode of a new pipe (machine-wide)"] = str(os.fstat(r).st_ino)
    os.close(r), os.close(w)
    return json.dumps(out)
"""

NOISY = r"""
import ctypes, os, socket, fcntl
libc = ctypes.CDLL(None, use_errno=True)
N = REPEATS
def attempt(f):
    try:
        f()
    except BaseException:
        pass
for i in range(N):  # processes, sessions (a new autogroup each)
    pid = os.fork()
    if pid == 0:
        os.setsid()
        os._exit(0)
    os.waitpid(pid, 0)
for where in (".", "/dev/shm"):  # files left behind
    for i in range(N):
        attempt(lambda: open(f"{where}/noise{i}", "w").close())
    attempt(lambda: os.setxattr(where, "user.noise", b"x"))
def close_all(*objects):
    for o in objects:
        os.close(o) if isinstance(o, int) else o.close()
for i in range(N):  # inodes of pipes, sockets, anonymous files (closed: the fd limit is small)
    attempt(lambda: close_all(*os.pipe()))
    attempt(lambda: close_all(*socket.socketpair()))
    attempt(lambda: close_all(os.eventfd(0)))
for family, address in ((socket.AF_INET, ("127.0.0.1", 9)), (socket.AF_INET, ("10.11.12.13", 9)),
                        (socket.AF_INET6, ("::1", 9))):  # packets the dead network refuses (counted)
    def send():
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            for i in range(N):
                attempt(lambda: s.sendto(b"x", address))
    attempt(send)
    for i in range(20):
        def connect():
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(0.01)
                s.connect(address)
        attempt(connect)
def unix_garbage():  # sockets only the kernel's garbage collector frees: each holds itself in flight
    for i in range(N):
        a, b = socket.socketpair()
        socket.send_fds(a, [b"x"], [a.fileno(), b.fileno()])
        a.close(), b.close()
attempt(unix_garbage)
def sysv():
    for i in range(20):
        libc.shmget(0x5EED + i, 4096, 0o1000 | 0o666)
        libc.semget(0x5EED + i, 1, 0o1000 | 0o666)
        libc.msgget(0x5EED + i, 0o1000 | 0o666)
attempt(sysv)
attempt(lambda: fcntl.flock(open("lock", "w"), fcntl.LOCK_EX))
attempt(lambda: bytearray(64 * 1024**2))
def f():
    return 0
"""
QUIET = "def f():\n    return 0\n"


def numbers(text: str) -> tuple[list[int], str]:
    """The integers in `text`, and the text with each replaced by '#'."""
    return [int(n) for n in re.findall(r"-?\d+", text)], re.sub(r"-?\d+", "#", text)


def differences(quiet: list[tuple[dict[str, str], dict[str, str]]],
                noisy: list[tuple[dict[str, str], dict[str, str]]]) -> dict[str, str]:  # fmt: skip
    """Paths that every noisy (before, after) pair changes more than any quiet pair does, with why.

    A number counts as moved by the noisy program when, in every noisy pair, it moves by more than twice the
    largest move of the same number in the quiet pairs plus `MARGIN`; a file's text (numbers aside) when it
    changes in every noisy pair and in no quiet one. Files that come or go count the same way.
    """
    found: dict[str, str] = {}
    paths = set().union(*(set(a) | set(b) for a, b in quiet + noisy))
    for path in sorted(paths):
        q, n = _moves(path, quiet), _moves(path, noisy)
        kinds = {m for m in n if isinstance(m, str)}
        if len(kinds) == 1 and all(isinstance(m, str) for m in n) and not any(isinstance(m, str) for m in q):
            found[path] = f"{kinds.pop()} after every noisy program, after no quiet one"
            continue
        if any(isinstance(m, str) for m in n) or not n:
            continue
        for i in range(min(len(m) for m in n)):
            smallest = min(abs(m[i]) for m in n)
            largest = max((abs(m[i]) for m in q if isinstance(m, list) and len(m) > i), default=0)
            if smallest > 2 * largest + MARGIN:
                found[path] = (
                    f"number {i} moves by >= {smallest} after a noisy program, <= {largest} after a quiet one"
                )
                break
    return found


def _moves(path: str, pairs: list[tuple[dict[str, str], dict[str, str]]]) -> list[list[int] | str]:
    """Per pair, how `path` moved: its numbers' deltas, or "text", "appears", "disappears"."""
    out: list[list[int] | str] = []
    for before, after in pairs:
        if (path in before) != (path in after):
            out.append("appears" if path in after else "disappears")
        elif path not in before:
            out.append([])
        else:
            (x, tx), (y, ty) = numbers(before[path]), numbers(after[path])
            out.append([b - a for a, b in zip(x, y, strict=True)] if (tx, len(x)) == (ty, len(y)) else "text")
    return out


def sweep(run: Callable[[str], dict[str, str]], rounds: int = 3) -> dict[str, str]:
    """`differences` over `rounds` noisy programs and, for each, a quiet one that sleeps as long as the noisy
    one ran (what the kernel frees or ages late, the next program sees alike after both: time alone), and a
    quick quiet one; `run(program)` runs one program on the worker under test, then the reader, and returns
    the reader's snapshot."""
    quiet, noisy = [], []
    for _ in range(rounds):
        before = run(QUIET)
        start = time.monotonic()
        noisy.append((before, run(NOISY.replace("REPEATS", str(REPEATS)))))
        slow = f"import time\ntime.sleep({time.monotonic() - start:.3f})\n{QUIET}"
        for program in (slow, QUIET):
            before = run(QUIET)
            quiet.append((before, run(program)))
    return differences(quiet, noisy)


def run_on_slot(slot: int) -> Callable[[str], dict[str, str]]:
    """A `run` for `sweep`: `program` then the reader, as two programs on the zygote of `slot`."""
    from execrl.harness.sandbox.program import Child

    def call(program: str, function: str) -> object:
        with Child(slot, LIMITS) as child:
            deadline = time.monotonic() + LIMITS.program_timeout
            reply = child.request({"op": "load", "source": program, "name": "__candidate__"}, deadline)
            assert "exc" not in reply, reply
            reply = child.request({"op": "call", "target": function}, deadline)
            assert "ok" in reply, reply
            return reply["ok"]

    def run(program: str) -> dict[str, str]:
        call(program, "f")
        return json.loads(str(call(SNAPSHOT, "snapshot")))

    return run


def main() -> None:
    from execrl.harness.sandbox.isolation import prepare_worker

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--slot", type=int, default=9)
    args = parser.parse_args()
    print(json.dumps(prepare_worker(args.slot)))
    found = sweep(run_on_slot(args.slot), args.rounds)
    for path, why in found.items():
        print(f"{path}: {why}")
    print(f"{len(found)} differences")


if __name__ == "__main__":
    main()
