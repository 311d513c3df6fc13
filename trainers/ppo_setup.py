"""Everything a PPO run holds between iterations (`Run`), how it is built, resumed and saved, and in-loop eval.

Kept apart from `execrl.trainers.ppo` so the iteration there reads as its six phases and nothing else.
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from execrl.benchmarks.problem import Problem
from execrl.harness.records import ExecResult, Limits
from execrl.trainers import checkpoint, devices
from execrl.trainers.data import UsageError
from execrl.trainers.ppo_math import AdaptiveKLController, FixedKLController
from execrl.trainers.rewards import REWARDS, mix_rewards
from execrl.trainers.rollout import PolicyWithValue, sample
from execrl.trainers.tracking import METRICS_FILE, Tracker

# Files a PPO run writes into OUT besides the model folder; `--force` removes exactly these.
RUN_FILES = (
    "checkpoint",
    "checkpoint.tmp",
    "checkpoint.old",
    "tb",
    METRICS_FILE,
    "ppo_config.json",
    "train_config.json",
)


def prepare_out(out: Path, config: dict[str, Any], resume: bool, force: bool) -> str:
    """ "done" (a finished run of this config), "resume" or "fresh"; refuses to overwrite without --force."""
    finished = out / "train_config.json"
    if finished.is_file() and not force:
        if json.loads(finished.read_text()) == config:
            return "done"
        raise UsageError(f"{out}: holds a finished run with a different config; pass --force to start over")
    if resume and not force:
        if checkpoint.checkpoint_policy_dir(out) is None:
            raise UsageError(f"--resume: {out} has no checkpoint to resume from")
        saved = json.loads((out / "ppo_config.json").read_text())
        if saved != config:
            changed = sorted(k for k in config if saved.get(k) != config[k])
            raise UsageError(f"--resume: {out} was started with other settings ({', '.join(changed)})")
        return "resume"
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(f"{out}: not empty; pass --resume to continue its run or --force to start over")
    out.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        path = out / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    (out / "ppo_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return "fresh"


def mixed_rewards(
    cfg: Any,
    problems: Sequence[Problem],
    programs: Sequence[str],
    results: Sequence[ExecResult],
    reward_model: Any = None,
    critic: Any = None,
) -> list[float | None]:
    """The sandbox reward `cfg.reward`, plus the weighted reward-model score and critic P(passed) if given."""
    scores = REWARDS[cfg.reward](problems, programs, results)
    prompts = [p.prompt for p in problems]
    if reward_model is not None and cfg.reward_model_weight:
        # The reward model scores the response after the prompt: the program less the `def` line it repeats.
        responses = [p[len(p.split("\n", 1)[0]) + 1 :] for p in programs]
        scores = mix_rewards(
            scores, [float(s) for s in reward_model.score(prompts, responses)], cfg.reward_model_weight
        )
    if critic is not None and cfg.critic_weight:
        p_passed = critic.predict_proba(prompts, list(programs))[:, 3]  # columns in critic.CLASSES order
        scores = mix_rewards(scores, [float(p) for p in p_passed], cfg.critic_weight)
    return scores


@dataclass
class Run:
    """The live objects of a PPO run plus the loop state a checkpoint restores."""

    cfg: Any
    out: Path
    accelerator: Any
    policy: Any
    """The policy as prepared by accelerate (DDP-wrapped on several GPUs)."""
    unwrapped: PolicyWithValue
    ref: Any
    tokenizer: Any
    optimizer: Any
    scheduler: Any
    pool: Any
    tracker: Tracker
    problems: list[Problem]
    eval_problems: list[Problem]
    kl_ctl: FixedKLController | AdaptiveKLController
    rng: random.Random
    """Draws each iteration's prompts."""
    reward_model: Any = None
    critic: Any = None
    step: int = 0
    best_reward: float = float("-inf")
    since_best: int = 0
    recent_rewards: list[float] = field(default_factory=list)

    def to_program(self, problem: Problem, text: str) -> str:
        from execrl.benchmarks.synth import synth_program

        return synth_program(problem, text)

    def execute(self, problems: Sequence[Problem], programs: Sequence[str]) -> list[ExecResult]:
        from execrl.harness.sandbox.pool import execute_many

        return execute_many(problems, programs, pool=self.pool)

    def score(self, problems: Sequence[Problem], programs: Sequence[str], results: Sequence[ExecResult]) -> list:
        return mixed_rewards(self.cfg, problems, programs, results, self.reward_model, self.critic)

    def quality(self, programs: Sequence[str]) -> list:
        from execrl.harness.scoring.quality import quality_many

        return quality_many(list(programs))

    def track_plateau(self, mean_reward: float, cfg: Any) -> None:
        self.recent_rewards = (self.recent_rewards + [mean_reward])[-cfg.plateau_window :]
        moving = sum(self.recent_rewards) / len(self.recent_rewards)
        if moving > self.best_reward + cfg.min_improvement:
            self.best_reward, self.since_best = moving, 0
        else:
            self.since_best += 1

    def plateaued(self, cfg: Any) -> bool:
        return bool(cfg.patience) and self.since_best >= cfg.patience

    def loop_state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "kl_coef": self.kl_ctl.value,
            "best_reward": self.best_reward,
            "since_best": self.since_best,
            "recent_rewards": self.recent_rewards,
            "prompt_rng": self.rng.getstate(),
        }

    def save_checkpoint(self) -> None:
        if self.accelerator.is_main_process:
            checkpoint.save_checkpoint(
                self.out, self.unwrapped, self.tokenizer, self.optimizer, self.scheduler, self.loop_state()
            )

    def save_final(self) -> None:
        """OUT itself becomes an ordinary Hugging Face model folder (+ value_head.pt)."""
        if self.accelerator.is_main_process:
            checkpoint.save_policy(self.out, self.unwrapped, self.tokenizer)


@contextlib.contextmanager
def setup_run(cfg: Any, out: Path, config: dict[str, Any], resume: bool) -> Iterator[Run]:
    """Build (or restore) the policy, reference, optimizer, sandbox pool and tracker; close them after."""
    from execrl.benchmarks.synth import load_synth
    from execrl.harness.sandbox.pool import SandboxPool
    from execrl.trainers.critic import Critic
    from execrl.trainers.reward_model import RewardModel
    from transformers import AutoModelForCausalLM

    devices.seed_everything(cfg.seed)
    # Exact resume on CPU needs deterministic kernels; warn_only keeps CUDA ops without one usable.
    torch.use_deterministic_algorithms(True, warn_only=True)
    accelerator = devices.make_accelerator(cfg.device, cfg.precision)

    problems = load_synth("train", seed=cfg.synth_seed)
    if cfg.families:
        wanted = {f.strip() for f in cfg.families.split(",") if f.strip()}
        problems = [p for p in problems if p.metadata["family"] in wanted]
        if not problems:
            raise UsageError(f"--families {cfg.families}: no synth family of that name")
    eval_problems = load_synth("test", seed=cfg.synth_seed)
    if cfg.families:
        eval_problems = [p for p in eval_problems if p.metadata["family"] in wanted]
    eval_problems = eval_problems[: cfg.eval_problems]

    tokenizer = devices.load_tokenizer(cfg.model)
    ref = devices.load_model(AutoModelForCausalLM, cfg.model).to(accelerator.device).eval()
    ref.requires_grad_(False)
    policy_dir = checkpoint.checkpoint_policy_dir(out) if resume else None
    lm = devices.load_model(AutoModelForCausalLM, str(policy_dir)) if policy_dir else copy.deepcopy(ref)
    lm.requires_grad_(True)
    devices.set_gradient_checkpointing(lm, cfg.gradient_checkpointing)
    policy = PolicyWithValue(lm)
    if policy_dir:
        checkpoint.load_value_head(policy, policy_dir)
    # Dropout stays off throughout: the PPO ratio must compare the same function before and after a step.
    policy.eval()
    optimizer, scheduler = devices.optimizer_and_schedule(
        policy.parameters(), cfg.lr, 0.0, round(cfg.warmup_share * cfg.iterations), cfg.iterations
    )
    prepared, optimizer = accelerator.prepare(policy, optimizer)
    kl_ctl = (
        AdaptiveKLController(cfg.kl_coef, cfg.kl_target, cfg.kl_horizon)
        if cfg.adaptive_kl
        else FixedKLController(cfg.kl_coef)
    )
    reward_model = RewardModel.load(cfg.reward_model, cfg.device) if cfg.reward_model else None
    critic = Critic.load(cfg.critic, cfg.device) if cfg.critic else None

    state = checkpoint.load_trainer_state(out, optimizer, scheduler) if resume else {}
    rng = random.Random(cfg.seed)
    if state:
        rng.setstate(state["prompt_rng"])
        kl_ctl.value = state["kl_coef"]
    tracker = Tracker(out, config, resume_step=state.get("step", 0))
    with SandboxPool(cfg.workers, Limits(timeout=cfg.timeout)) as pool:
        run = Run(
            cfg,
            out,
            accelerator,
            prepared,
            policy,
            ref,
            tokenizer,
            optimizer,
            scheduler,
            pool,
            tracker,
            problems,
            eval_problems,
            kl_ctl,
            rng,
            reward_model,
            critic,
            step=state.get("step", 0),
            best_reward=state.get("best_reward", float("-inf")),
            since_best=state.get("since_best", 0),
            recent_rewards=state.get("recent_rewards", []),
        )
        try:
            yield run
        finally:
            tracker.close()


def evaluate_pass_at_1(cfg: Any, run: Run) -> float:
    """pass@1 on held-out synth problems: mean over problems of c / n (the unbiased estimator for k = 1,
    Chen et al. 2021), sampled under a forked RNG so evaluating never changes the training trajectory."""
    if not run.eval_problems:
        return float("nan")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed + 1_000_003 * run.step)
        passed = []
        for i in range(0, len(run.eval_problems), 64):
            chunk = run.eval_problems[i : i + 64]
            rollout = sample(
                run.unwrapped.lm,
                run.tokenizer,
                [p.prompt for p in chunk],
                [p.metadata["stop"] for p in chunk],
                samples_per_prompt=cfg.eval_samples,
                max_new_tokens=cfg.max_new_tokens,
                temperature=cfg.eval_temperature,
                max_prompt_tokens=cfg.max_prompt_tokens,
            )
            problems = [p for p in chunk for _ in range(cfg.eval_samples)]
            programs = [run.to_program(p, t) for p, t in zip(problems, rollout.texts, strict=True)]
            passed += [r.passed for r in run.execute(problems, programs)]
    return sum(passed) / len(passed)
