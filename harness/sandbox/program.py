"""One program run, seen from the judge: `Child`, the handle on one sandboxed child process of a slot's zygote.

`Child(slot, limits, stdin)` asks the slot's zygote (`isolation`) for a fresh child; `request()` sends a frame
and waits for the reply up to a deadline (stretched by the time the program waited for a CPU:
`charged_time`) while pumping stdin and capturing (capped) stdout; `close()` kills the child's whole pid
namespace, reaps it and returns its exit status, with `memory_exceeded` set when the slot's cgroup saw an
OOM kill meanwhile. What the child does raises `ChildTimeout`, `ChildDied` or `OutputExceeded`; a fault of the
harness raises `isolation.SandboxError`.
"""

from __future__ import annotations

import os
import select
import time
from typing import Any

from execrl.harness.records import Limits
from execrl.harness.sandbox import cgroups, wire
from execrl.harness.sandbox.charged_time import Stretch
from execrl.harness.sandbox.isolation import SandboxError, _Zygote, _zygote_call, _zygote_for, _zygotes

_CHILD_OWN_CODES = (70, 71)
"""Exit statuses of the child's own making (`child._child_main`: its set-up failed; `child._serve_calls`: a
reply could not be encoded, e.g. MemoryError): not the program's."""


class ChildTimeout(Exception):
    """The child did not answer before the deadline."""


class ChildDied(Exception):
    """The child closed its reply pipe (exited, crashed or was killed) without answering."""


class OutputExceeded(Exception):
    """The child wrote more to stdout than `Limits.output` allows."""


def _no_tasks() -> list[int]:
    """Without a cgroup no deadline is stretched: the CPU of the program's other processes is unknown, so a main
    task waiting behind its own forks would look starved (found by a red-team review: 0.5 s tests ran 3.4 s)."""
    return []


def _unknown() -> int:
    return -1


def _oom_killed(zygote: _Zygote) -> bool:
    """Whether the kernel's OOM killer acted in the slot since the last look (one small read)."""
    if zygote.cgroup is None:
        return False
    try:
        kills = zygote.cgroup.oom_kills()
    except (OSError, ValueError):
        return False
    killed = kills > zygote.oom_kills >= 0
    zygote.oom_kills = kills
    return killed


class Child:
    """One sandboxed child process serving calls (see `harness/sandbox/child.py`)."""

    def __init__(self, slot: int, limits: Limits, stdin: bytes | None = None) -> None:
        self.slot = slot
        self.limits = limits
        zygote = _zygote_for(slot)
        if zygote.current is not None:  # a caller forgot close(): reap it before the next spawn
            zygote.current.close()
        self.isolation = dict(zygote.isolation)
        self.memory_exceeded = False
        """Set by `close()`: the OOM killer acted in the slot's cgroup while this program ran."""
        self.seen: dict[str, int] = {}
        """Set by `close()`: what the child's audit hook counted (`audit_hook.KINDS` -> count)."""
        self.exited_early = False
        """Set by `close()`: the child ended by an exit status of its own (not a signal, not the child's own
        codes for a set-up or reply failure) while a request was waiting for its answer."""
        self._died = False
        self.stdout = bytearray()
        self._stdin = memoryview(stdin or b"")
        self._buffer = bytearray()
        self._closed = False
        rpc_in_r, self._rpc_in = os.pipe()
        # Never a blocking write to the child: it may stop reading (or fill or shrink the pipe) to hang
        # the judge outside every deadline.
        os.set_blocking(self._rpc_in, False)
        self._rpc_out, rpc_out_w = os.pipe()
        self._stdin_w = self._stdout_r = -1
        if stdin is None:
            stdin_r = stdout_w = os.open(os.devnull, os.O_RDWR)
        else:
            stdin_r, self._stdin_w = os.pipe()
            self._stdout_r, stdout_w = os.pipe()
            os.set_blocking(self._stdin_w, False)
        sent = [rpc_in_r, rpc_out_w, stdin_r, stdout_w]
        group = zygote.cgroup
        child_limits = {"cpu": limits.program_timeout, "memory": limits.memory, "file_size": limits.file_size,
                        "open_files": limits.open_files, "processes": limits.processes}  # fmt: skip
        try:
            if group is not None:  # one per slot, and a slot runs one program at a time: the program's limits
                group.set_limits(limits.memory + cgroups.HEADROOM, limits.processes)
            self.pid = _zygote_call(slot, {"op": "spawn", "limits": child_limits}, sent)["pid"]
        except OSError as exc:
            self._close_fds()
            raise SandboxError(f"cannot set the slot's cgroup limits: {exc}") from None
        except BaseException:
            self._close_fds()
            raise
        finally:
            for fd in set(sent):
                os.close(fd)
        zygote.current = self
        # No reference back to self (a cycle would keep every Child for the garbage collector).
        self.stretch = Stretch(group.tasks, group.cpu_ns) if group else Stretch(_no_tasks, _unknown)
        if self._stdin_w >= 0 and not self._stdin:
            os.close(self._stdin_w)
            self._stdin_w = -1

    def request(self, message: dict[str, Any], deadline: float) -> dict[str, Any]:
        """Send `message` and return the child's reply frame (raises on timeout, death or output cap)."""
        try:
            data = wire.dumps(message)
        except (ValueError, TypeError) as exc:
            raise SandboxError(f"cannot send to the child: {exc}") from None
        try:
            self._write_all(data, deadline)
        except BrokenPipeError:
            self._died = True
            raise ChildDied("the child closed its request pipe") from None
        return self._await_reply(deadline)

    def _write_all(self, data: bytes, deadline: float) -> None:
        # The child reads requests only between calls; a big request may need several writes.
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self._rpc_in, view) :]
                continue
            except BlockingIOError:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChildTimeout("the child did not take the request before the deadline")
            select.select([], [self._rpc_in], [], left)

    def _await_reply(self, deadline: float) -> dict[str, Any]:
        while True:
            frame = self._take_frame()
            if frame is not None:
                return frame
            readers = [self._rpc_out] + ([self._stdout_r] if self._stdout_r >= 0 else [])
            writers = [self._stdin_w] if self._stdin_w >= 0 else []
            now = time.monotonic()
            end = self.stretch.effective(deadline, now)  # the deadline, later by what load took from the program
            self.stretch.observe(now)
            if now >= end and self.stretch.expired(now):
                raise ChildTimeout("no reply before the deadline")
            left = min(self.stretch.effective(deadline, now), self.stretch.wake_by(now)) - now
            readable, writable, _ = select.select(readers, writers, [], max(0.0, left))
            if writable:
                self._pump_stdin()
            if self._stdout_r in readable:
                self._pump_stdout()
            if self._rpc_out in readable:
                chunk = os.read(self._rpc_out, 1 << 20)
                if not chunk:
                    self._died = True
                    raise ChildDied("the child ended without answering")
                self._buffer += chunk

    def _take_frame(self) -> dict[str, Any] | None:
        if len(self._buffer) < 4:
            return None
        size = int.from_bytes(self._buffer[:4], "big")
        if size > wire.MAX_FRAME:
            raise ChildDied(f"malformed reply from the child: a frame of {size} bytes")
        if len(self._buffer) < 4 + size:
            return None
        body = bytes(self._buffer[4 : 4 + size])
        del self._buffer[: 4 + size]
        try:
            frame = wire.loads(body)
        except (ValueError, RecursionError) as exc:
            raise ChildDied(f"malformed reply from the child: {exc}") from None
        if type(frame) is not dict:
            raise ChildDied("malformed reply from the child: not an object")
        return frame

    def _pump_stdin(self) -> None:
        try:
            self._stdin = self._stdin[os.write(self._stdin_w, self._stdin[: 1 << 16]) :]
        except (BrokenPipeError, BlockingIOError):
            self._stdin = self._stdin[:0]
        if not self._stdin:
            os.close(self._stdin_w)
            self._stdin_w = -1

    def _pump_stdout(self, drain: bool = False) -> None:
        while True:
            chunk = os.read(self._stdout_r, 1 << 16)
            if not chunk:
                os.close(self._stdout_r)
                self._stdout_r = -1
                return
            self.stdout += chunk
            if len(self.stdout) > self.limits.output:
                raise OutputExceeded(f"more than {self.limits.output} bytes on stdout")
            if not drain or not select.select([self._stdout_r], [], [], 0)[0]:
                return

    def drain_stdout(self) -> bytes:
        """All stdout written so far (call after the final reply)."""
        if self._stdout_r >= 0 and select.select([self._stdout_r], [], [], 0)[0]:
            self._pump_stdout(drain=True)
        return bytes(self.stdout)

    def close(self, grace: float = 0.0) -> int:
        """Kill the child's whole process tree (after up to `grace` s for it to exit); its exit status."""
        if self._closed:
            return 0
        self._closed = True
        self._close_fds()
        zygote = _zygotes.get(self.slot)
        if zygote is None or zygote.current is not self:
            return 0  # the zygote was restarted since: it took its children with it
        zygote.current = None
        reply = _zygote_call(self.slot, {"op": "reap", "grace": grace})
        status = int(reply["status"])
        self.memory_exceeded = _oom_killed(zygote)
        seen = reply.get("seen")
        if type(seen) is dict:
            self.seen = {k: v for k, v in seen.items() if type(k) is str and type(v) is int and v > 0}
        self.exited_early = self._died and 0 <= status < 128 and status not in _CHILD_OWN_CODES
        return status

    def _close_fds(self) -> None:
        for name in ("_rpc_in", "_rpc_out", "_stdin_w", "_stdout_r"):
            fd = getattr(self, name, -1)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
