"""The one user-error type: a mistake the user can fix, reported as one line on stderr and exit status 2.

It lives in the lowest room (imports flow benchmarks <- harness <- {trainers, reports}) so that every room can
raise it and derive from it: the benchmark loaders' `DataError`, the samples reader's `SampleError`, the
generation engines' `GenerationError` and the reports' `RunError` are all `UserError`s, and the dispatcher
(`execrl.harness.cli.dispatch`) turns any of them into `execrl COMMAND: message` and exit 2 for every command.
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix (a flag, a file, a folder of another run); the message says what and how."""
