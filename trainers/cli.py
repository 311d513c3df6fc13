"""`execrl train SUBCOMMAND`: the training stages, one module with a `main(argv)` each.

Dispatch only, so `execrl train --help` does not import torch.
"""

from __future__ import annotations

from execrl.harness.cli import dispatch

# name -> (module, one-line summary)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "sft": ("execrl.trainers.sft", "supervised fine-tuning on (prompt, completion) rows, loss on the completion"),
    "ppo": ("execrl.trainers.ppo", "PPO with the sandbox verdict of each sampled program as reward"),
    "rm": ("execrl.trainers.reward_model", "Bradley-Terry reward model on (prompt, chosen, rejected) pairs"),
    "critic": ("execrl.trainers.critic", "CodeRL critic: predict syntax_error / runtime_error / failed / passed"),
}


def main(argv: list[str]) -> int:
    try:
        return dispatch("execrl train", SUBCOMMANDS, argv)
    finally:
        from execrl.trainers.distributed import finish

        finish()
