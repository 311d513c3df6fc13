"""The `execrl` command: one subcommand per stage.

Each subcommand lives in its own module with a `main(argv)` function; this file only dispatches,
so `execrl evaluate` never imports torch and `--help` stays fast.
"""

from __future__ import annotations

import importlib
import sys

# name -> (module, one-line summary). Nested groups (report, train) dispatch the same way.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("trainers.cli", "training stages: sft, rm (reward model), critic, ppo"),
    "generate": ("harness.generate", "sample completions for a benchmark from a model: samples.jsonl (resumable)"),
    "evaluate": ("harness.evaluate", "run a samples file in the sandbox: results.jsonl, metrics.json (pass@k)"),
    "report": ("reports.cli", "reports: compare two runs, leaderboard of runs, CI regression check"),
    "pipeline": ("trainers.pipeline", "the main job: tiny model -> SFT -> PPO -> evaluate both -> report (resumable)"),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS) if COMMANDS else 0
    lines = ["usage: execrl COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "Run `execrl COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"execrl: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
