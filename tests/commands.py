"""Commands as the user runs them: through `execrl`'s dispatcher, which turns a user error into exit 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from execrl.harness.cli import main as execrl


def command(*words: str) -> Callable[[list[str]], int]:
    """`main(argv)` of `execrl WORDS... ARGV`; a flag tyro refuses (SystemExit) is returned as its exit status."""

    def main(argv: list[str]) -> int:
        try:
            return execrl([*words, *argv])
        except SystemExit as e:
            return int(e.code or 0)

    return main


def evaluate_flags(samples: Path, out: Path, *extra: str) -> list[str]:
    """`execrl evaluate`'s flags for the HumanEval samples file `samples` and the run folder `out`, then `extra`."""
    return ["--benchmark", "humaneval", "--samples", str(samples), "--out", str(out), *extra]
