"""`execrl serve`: the HTTP reward server of `execrl.harness.serve`, scoring with a reward of `REWARDS`.

The server lives with the sandbox it serves (harness/serve); this entry sits in trainers/ because it picks the
reward function, and the harness never imports trainers (ARCHITECTURE.md's one-way imports).
"""

from __future__ import annotations

from execrl.harness.flags import parse
from execrl.harness.serve.cli import Config, serve
from execrl.trainers.rewards import REWARDS


def main(argv: list[str]) -> int:
    cfg = parse(Config, argv)
    return serve(cfg, REWARDS[cfg.reward])
