"""`execrl train SUBCOMMAND`: the training stages, one module with a `main(argv)` each.

Dispatch only, so `execrl train --help` does not import torch.
"""

from __future__ import annotations

import importlib
import sys

# name -> (module, one-line summary)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "sft": ("trainers.sft", "supervised fine-tuning on (prompt, completion) rows, loss on the completion"),
    "ppo": ("trainers.ppo", "PPO with the sandbox verdict of each sampled program as reward"),
    "rm": ("trainers.reward_model", "Bradley-Terry reward model on (prompt, chosen, rejected) pairs"),
    "critic": ("trainers.critic", "CodeRL critic: predict syntax_error / runtime_error / failed / passed"),
}


def _usage() -> str:
    width = max(len(name) for name in SUBCOMMANDS)
    lines = ["usage: execrl train SUBCOMMAND [ARGS...]", "", "subcommands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in SUBCOMMANDS.items()]
    lines += ["", "Run `execrl train SUBCOMMAND --help` for its options."]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"execrl train: unknown subcommand {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return int(module.main(rest) or 0)
