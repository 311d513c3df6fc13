"""The parse-and-radon half of quality scoring, run in a worker process that can be killed at a deadline.

Program text reaching quality scoring is untrusted (a model's output, and under RL a policy rewarded for
it), and radon is not bounded on it: `radon.raw` tokenises a statement that spans n lines n times over
(a 4,000-line list literal takes 40 s), and deep nesting overflows `ast` or radon's visitors. So the
trusted process never parses candidate text for quality: `RadonWorker` owns one `python -m` child
running `serve()`, reused across programs and batches (it starts once, ~0.2 s), and kills it when one
program overruns its deadline. A program that kills or stalls the child costs that program its figures
(a counted reason), never the stage.

Protocol (the child's stdin/stdout): the parent sends a batch as an 8-byte big-endian length and an
ASCII JSON array of program strings; the child answers one JSON line per program, in order: the
`measure()` dict. A first line `{"ready": true}` says the imports are done. The parent only ever sends
text that encodes as UTF-8 (`quality.py` checks), so `json.dumps`' ASCII escapes round-trip exactly.
"""

from __future__ import annotations

import ast
import json
import math
import os
import select
import struct
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any

MEMORY_LIMIT = 2 * 1024**3
"""Address-space limit of the worker (RLIMIT_AS): a program whose AST would need more is `memory`."""
STARTUP_TIMEOUT = 30.0
"""Seconds the worker may take to start and import radon (~0.2 s unloaded)."""
MAX_REPLY = 1 << 16
"""A reply line longer than this is a protocol fault (replies are a few dozen bytes)."""

# Reasons a program gets no figures from the worker (see quality.REASONS for what each means).
SYNTAX_ERROR, EMPTY, TOO_DEEP, MEMORY, TIMEOUT, BUDGET, CRASHED = (
    "syntax_error", "empty", "too_deep", "memory", "timeout", "budget", "crashed",
)  # fmt: skip


def measure(program: str) -> dict[str, Any]:
    """Parse `program` and measure it: {"cyclomatic", "maintainability", "docstring_coverage"} (floats,
    coverage NaN without defs), or {"reason": ...} when it does not parse, is empty, or is too deep."""
    from radon.complexity import cc_visit
    from radon.metrics import mi_visit
    from radon.visitors import ComplexityVisitor, Function

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning on invalid escapes: not our concern here
            tree = ast.parse(program)
            if not tree.body:
                return {"reason": EMPTY}
            functions = [block for block in cc_visit(program) if isinstance(block, Function)]
            if functions:
                cyclomatic = sum(f.complexity for f in functions) / len(functions)
            else:  # no functions: the module body's own complexity (1 + decision points)
                cyclomatic = float(ComplexityVisitor.from_code(program).complexity)
            maintainability = float(mi_visit(program, multi=True))
    except (SyntaxError, ValueError):  # ValueError: NUL bytes
        return {"reason": SYNTAX_ERROR}
    except RecursionError:
        return {"reason": TOO_DEEP}
    except MemoryError:  # the parser's own stack ("too complex") or RLIMIT_AS
        return {"reason": MEMORY}
    defs = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    coverage = sum(ast.get_docstring(d) is not None for d in defs) / len(defs) if defs else math.nan
    return {"cyclomatic": float(cyclomatic), "maintainability": maintainability, "docstring_coverage": coverage}


def serve() -> None:
    """The worker's loop: read batches from stdin until EOF, answer each program on the protocol fd."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    reply = os.fdopen(os.dup(1), "w", encoding="ascii")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # a stray print in a library cannot corrupt the protocol
    measure("x = 1\n")  # import radon before saying ready
    reply.write('{"ready": true}\n')
    reply.flush()
    source = sys.stdin.buffer
    while header := source.read(8):
        (size,) = struct.unpack(">Q", header)
        for program in json.loads(source.read(size)):
            try:
                answer = measure(program)
            except MemoryError:
                answer = {"reason": MEMORY}
            except Exception:  # noqa: BLE001 - a radon bug on odd input is that program's reason, not the batch's
                answer = {"reason": CRASHED}
            reply.write(json.dumps(answer) + "\n")
            reply.flush()


class RadonWorker:
    """The parent's end: one worker process, started on first use, restarted after a kill or a crash."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid = 0  # the process that started it: a forked copy of this object must not use its pipes
        self._buffer = b""

    def measure_many(self, programs: Sequence[str], sample_timeout: float, deadline: float) -> list[dict[str, Any]]:
        """`measure()` of each program, in order. A program still running `sample_timeout` seconds after the
        previous answer gets {"reason": "timeout"} (the worker is killed and the rest go to a new one); once
        `deadline` (time.monotonic()) passes, every program left gets {"reason": "budget"}."""
        answers: list[dict[str, Any]] = []
        while len(answers) < len(programs):
            left = len(programs) - len(answers)
            if time.monotonic() >= deadline:
                answers += [{"reason": BUDGET}] * left
            elif not self._ensure_started(deadline):  # cannot start (or import radon) at all
                answers += [{"reason": BUDGET if time.monotonic() >= deadline else CRASHED}] * left
            else:
                answers += self._run(programs[len(answers) :], sample_timeout, deadline)
        return answers

    def _run(self, programs: Sequence[str], sample_timeout: float, deadline: float) -> list[dict[str, Any]]:
        """Answers for a prefix of `programs`: all of them, or up to and including the one that failed."""
        assert self._proc is not None and self._proc.stdin is not None
        payload = json.dumps(list(programs)).encode("ascii")
        try:
            self._proc.stdin.write(struct.pack(">Q", len(payload)) + payload)
            self._proc.stdin.flush()
        except OSError:  # died between batches
            self.close()
            return [{"reason": CRASHED}]
        answers: list[dict[str, Any]] = []
        for _ in programs:
            own_deadline = time.monotonic() + sample_timeout
            line = self._read_line(min(own_deadline, deadline))
            if line is None:  # still busy: kill it, this program is done for
                self.close()
                return answers + [{"reason": TIMEOUT if own_deadline <= deadline else BUDGET}]
            try:
                answer = json.loads(line)
            except ValueError:
                answer = None
            if not isinstance(answer, dict):  # EOF (the worker died: a segfault, the kernel's OOM killer)
                self.close()
                return answers + [{"reason": CRASHED}]
            answers.append(answer)
        return answers

    def _ensure_started(self, deadline: float) -> bool:
        if self._proc is not None and self._pid == os.getpid():
            if self._proc.poll() is None:
                return True
            self.close()  # died since the last batch: reap it
        self._proc, self._buffer = None, b""
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        except OSError:  # no process to be had (EAGAIN at the process limit, ENOMEM): no figures, no crash
            return False
        self._pid = os.getpid()
        if self._read_line(min(deadline, time.monotonic() + STARTUP_TIMEOUT)) == b'{"ready": true}':
            return True
        self.close()
        return False

    def _read_line(self, until: float) -> bytes | None:
        """The next reply line; b"" at EOF or on a garbled reply; None when `until` passes first."""
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = until - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk or len(self._buffer) > MAX_REPLY:
                return b""
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def close(self) -> None:
        """Kill the worker (if any) and reap it; the next call starts a fresh one."""
        proc, self._proc, self._buffer = self._proc, None, b""
        if proc is None or self._pid != os.getpid():
            return
        proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass


if __name__ == "__main__":
    serve()
