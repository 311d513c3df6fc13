"""The pipeline's optional third arm: the PPO model with CodeRL's critic sampling (`critic_sampling:` in --config).

With `critic_sampling: {enabled: true}` the pipeline adds two stages after the SFT and PPO evaluations, and the
report shows all three arms (`execrl report compare ... --extra`, `execrl.reports.arms`):

- `critic`: the PPO model samples `train_n` programs for each of the first `train_problems` of its *training*
  problems (the ppo section's source), run in the sandbox; a critic (`execrl train critic`, started from the SFT
  model) learns their verdicts. No evaluated problem is in its data (the pipeline already refuses a training source
  that meets the evaluation), so the critic has never seen a hidden-test verdict of a problem it will rank.
  `critic: ""` skips it (the ranker is then "first that passes the examples"); `critic: DIR` uses a trained one.
- `cs_eval`: `execrl generate --strategy critic-sampling` from the PPO model on every evaluated benchmark — the same
  problems, temperature and token budget as the other arms — evaluated like them into `cs_eval/<benchmark>`. The
  strategy's budget (model calls per problem) goes into the run's config.json: critic sampling submits one program
  per problem after drawing `n` drafts and up to `rounds x refine x repairs` repairs, so the report shows that
  budget next to plain sampling's one call per program.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from execrl.benchmarks.errors import UserError

STAGES = ("critic", "cs_eval")
OUTPUTS = ("critic_samples", "critic", "cs_samples", "cs_eval")
ARM_NAME = "PPO + critic sampling"


@dataclass(kw_only=True)
class CriticSamplingSettings:
    """The `critic_sampling:` section: the third arm (off unless `enabled: true`)."""

    enabled: bool = False
    critic: str = "train"
    """"train": train a critic here on the PPO model's samples of its training problems; "": no critic (first that
    passes the examples); else a critic folder (`execrl train critic`)."""
    train_problems: int = 400
    """Training problems the PPO model samples for the critic's data (the first N of the ppo section's source)."""
    train_n: int = 4
    """Samples per training problem for the critic's data."""
    critic_steps: int = 400
    """Optimiser steps of the critic."""
    critic_batch_size: int = 16
    n: int = 4
    """Drafts per problem (execrl generate --strategy critic-sampling --n)."""
    rounds: int = 1
    refine: int = 2
    repairs: int = 2


def check(cs: CriticSamplingSettings, where: str) -> None:
    for name in ("train_problems", "train_n", "critic_steps", "critic_batch_size", "n", "refine", "repairs"):
        if getattr(cs, name) < 1:
            raise UserError(f"{where}.{name} must be >= 1, got {getattr(cs, name)}")
    if cs.rounds < 0:
        raise UserError(f"{where}.rounds must be >= 0, got {cs.rounds}")
    if cs.enabled and cs.critic not in ("train", "") and not (Path(cs.critic) / "config.json").is_file():
        raise UserError(f"{where}.critic {cs.critic}: no critic folder there (a folder `execrl train critic` wrote)")


def critic_dir(cs: CriticSamplingSettings, out: Path) -> str:
    """The critic folder the arm ranks with ("" for none)."""
    return str(out / "critic") if cs.critic == "train" else cs.critic


def stage_critic(settings: Any, out: Path) -> None:
    """Label the PPO model's samples of its training problems in the sandbox and train the critic on them."""
    from execrl.benchmarks.registry import default_data_dir
    from execrl.harness.flags import load_from_flags
    from execrl.harness.generate import Config as GenerateConfig
    from execrl.harness.generate import generate
    from execrl.trainers.critic import CriticConfig, rows_from_run, train_critic
    from execrl.trainers.sources import TRAIN_SPLIT, source_names

    cs, ev, ppo = settings.critic_sampling, settings.eval, settings.ppo
    if cs.critic != "train":
        return
    data_dir = ppo.data_dir or ev.data_dir or default_data_dir()
    rows = []
    for name in source_names(ppo):
        folder = out / "critic_samples" / name
        source = {"problems": ppo.problems} if name == "problems" else {"benchmark": name}
        gen = GenerateConfig(
            model=str(out / "ppo"), n=cs.train_n, out=folder, split=ppo.split or TRAIN_SPLIT,
            variant=ppo.variant, difficulty=ppo.difficulty, data_dir=data_dir, limit=cs.train_problems,
            temperature=ev.temperature, top_p=1.0, max_new_tokens=ev.max_new_tokens, batch_size=ev.batch_size,
            device=settings.device, **source,
        )  # fmt: skip
        print(f"== critic data: {name} train (n={cs.train_n}, limit={cs.train_problems})", file=sys.stderr)
        generate(gen)
        problems = load_from_flags(gen)
        recorded = {"model": str(out / "ppo"), "benchmark": gen.benchmark, "split": gen.split, "limit": gen.limit,
                    "problems": str(gen.problems) if gen.problems else None}  # fmt: skip
        ev.evaluate(problems, folder / "samples.jsonl", folder, data_dir, [1], recorded)
        rows += rows_from_run(folder, problems)
    data = out / "critic_samples" / "critic.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    train_critic(
        CriticConfig(
            model=str(out / "sft"),
            data=data,
            out=out / "critic",
            max_steps=cs.critic_steps,
            batch_size=cs.critic_batch_size,
            device=settings.device,
        )  # fmt: skip
    )


def stage_cs_eval(settings: Any, out: Path) -> None:
    """Critic sampling from the PPO model on every evaluated benchmark, evaluated like the other two arms."""
    from execrl.benchmarks.registry import default_data_dir, load_problems
    from execrl.trainers.critic_sampling import BUDGET, SAMPLES, StrategyConfig
    from execrl.trainers.critic_sampling import run as critic_sampling

    cs, ev = settings.critic_sampling, settings.eval
    data_dir = ev.data_dir or default_data_dir()
    for benchmark in ev.benchmarks:
        folder, limit = out / "cs_samples" / benchmark, ev.limit.get(benchmark)
        print(f"== {ARM_NAME}: {benchmark} (limit={limit})", file=sys.stderr)
        strategy = StrategyConfig(
            model=str(out / "ppo"), benchmark=benchmark, critic=critic_dir(cs, out), n=cs.n, rounds=cs.rounds,
            refine=cs.refine, repairs=cs.repairs, limit=limit, temperature=ev.temperature, top_p=1.0,
            max_new_tokens=ev.max_new_tokens, batch_size=max(1, ev.batch_size // cs.n), data_dir=data_dir,
            device=settings.device, out=folder, sandbox=ev.sandbox, workers=ev.workers, timeout=ev.timeout,
            ray_address=ev.ray_address,
        )  # fmt: skip
        critic_sampling(strategy)
        budget = json.loads((folder / BUDGET).read_text())
        config = {"model": str(out / "ppo"), "strategy": "critic-sampling", "budget": budget,
                  "temperature": ev.temperature, "max_new_tokens": ev.max_new_tokens, "limit": limit,
                  **{k: getattr(cs, k) for k in ("n", "rounds", "refine", "repairs", "critic")}}  # fmt: skip
        problems = load_problems(benchmark, None, data_dir, limit=limit)
        ev.evaluate(problems, folder / SAMPLES, out / "cs_eval" / benchmark, data_dir, [1], config)


def report_args(settings: Any, out: Path) -> list[str]:
    """`execrl report compare` arguments adding the third arm (none when it is off)."""
    if not settings.critic_sampling.enabled:
        return []
    return ["--extra", str(out / "cs_eval"), "--extra-names", ARM_NAME]
