"""Bounds on the judge's own work with the candidate's data: the run-ending `Abort`, the trusted-code alarm,
and exception text that is bounded and never raises.

The codec (`wire`) bounds what a reply may hold; these bound what the trusted side then does with it, so a
wrong answer ends as the candidate's verdict (a timeout or a failure), never a stalled or crashed judge
(which the pool would report as a sandbox_error: no penalty for the policy).
"""

from __future__ import annotations

import reprlib
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from execrl.harness.records import Verdict


class Abort(BaseException):
    """Ends the run: the child timed out, died or broke the output cap (test code cannot catch it)."""

    def __init__(self, verdict: Verdict, error: str) -> None:
        super().__init__(error)
        self.verdict = verdict
        self.error = error


ALARM_GRACE = 1.0
"""Seconds past the test's deadline (as stretched so far) before the alarm stops the test code: waits on the
child end at that deadline themselves; the alarm is for the judge's own work."""


class TrustedCodeAlarm:
    """SIGALRM that stops the trusted test code, as a `timeout`, once it runs ALARM_GRACE past a deadline.

    The test code's work on the candidate's data can be unbounded even when the data is small: `for _ in
    range(candidate(x))` with a returned 10**15. Without the alarm the worker hangs until the pool kills it,
    and the run is a sandbox_error (no penalty). A signal interrupts Python code only, between bytecodes; the
    C-level work (building sets, comparing, repr) is bounded by the codec's budget instead. Signals need the
    main thread: elsewhere (a server's worker thread) the test code runs without the alarm.

    Installed once per program (`with TrustedCodeAlarm() as alarm:`, two sigactions) and armed per test
    (`alarm.arm(deadline, link.stretched_by)`, then `alarm.disarm()` in a `finally`: a setitimer call each).
    The deadline follows the test's as load stretches it (`charged_time`): a ring before then sets the timer
    again. (It did not, found by a red-team review: under load a HumanEval program that used 0.8 s of CPU
    of its 1 s budget was stopped as a timeout, where the same program as an APPS call passed.)
    """

    def __init__(self) -> None:
        self.installed = False
        self._previous: Any = None
        self._deadline = 0.0
        self._stretched_by: Callable[[], float] = _unstretched
        self._armed = False

    def __enter__(self) -> TrustedCodeAlarm:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGALRM, self._ring)
            self.installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self.installed:
            self.installed = False
            try:
                signal.setitimer(signal.ITIMER_REAL, 0)
            finally:  # the alarm may fire on the way out: the Abort goes on, the old handler comes back
                signal.signal(signal.SIGALRM, self._previous)

    def arm(self, deadline: float, stretched_by: Callable[[], float] | None = None) -> None:
        """Ring ALARM_GRACE after `deadline` (a `time.monotonic()` value), moved out by what `stretched_by()`
        says when the time comes, unless disarmed first."""
        if self.installed:
            self._deadline, self._stretched_by, self._armed = deadline, stretched_by or _unstretched, True
            signal.setitimer(signal.ITIMER_REAL, max(deadline - time.monotonic(), 0.0) + ALARM_GRACE)

    def _ring(self, signum: int, frame: Any) -> None:
        if not self._armed:  # a ring that was on its way when the test ended: it must not set the timer again
            return
        left = self._deadline + self._stretched_by() + ALARM_GRACE - time.monotonic()
        if left > 0.001:  # the deadline moved out since the timer was set (bounded: charged_time.STRETCH_CAP)
            signal.setitimer(signal.ITIMER_REAL, left)
            return
        raise Abort(Verdict.TIMEOUT, "the test code ran past the deadline on the candidate's data")

    def disarm(self) -> None:
        if self.installed:
            self._armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)


def _unstretched() -> float:
    return 0.0


def exception_text(exc: BaseException, limit: int = 2000) -> str:
    """`Type: message` of an exception raised in the judge, bounded in time and length, never raising.

    Its message may hold the candidate's data: `str(KeyError(k))` is `repr(k)`, which raises ValueError for
    an int of more than 4,300 digits (a crash of the judge, reported as a sandbox_error) and is as long as a
    2-million-item list. Non-string arguments are shown through a bounded repr instead.
    """
    name = type(exc).__name__
    try:
        if all(type(arg) is str for arg in exc.args):
            return f"{name}: {str(exc)[:limit]}"
        return f"{name}: {', '.join(_BOUNDED.repr(arg) for arg in exc.args)}"[:limit]
    except Exception:  # noqa: BLE001 - a message we cannot show is not the candidate's verdict
        return f"{name}: (message not shown)"


class _BoundedRepr(reprlib.Repr):
    """reprlib's size limits, and a wide int described instead of converted (reprlib's `repr_int` calls
    `repr`, which refuses more than 4,300 digits)."""

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 256:
            return f"<int of {x.bit_length()} bits>"
        return super().repr_int(x, level)


_BOUNDED = _BoundedRepr()
_BOUNDED.maxstring = _BOUNDED.maxother = 200
