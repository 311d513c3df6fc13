"""Everything a PPO run holds between iterations (`Run`), how it is built, resumed and saved, and in-loop eval.

Kept apart from `execrl.trainers.ppo` so the iteration there reads as its six phases and nothing else.
The problems come from any source (`execrl.trainers.sources`); each is prompted, cut at its stops and turned
into a program exactly as `execrl generate` + `execrl evaluate` do for its benchmark (`build_prompt`,
`stop_sequences`, `execrl.harness.extract.program_of`), synth's through `synth_program`, its one rule.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from execrl.benchmarks.datafiles import DataError, iter_jsonl
from execrl.benchmarks.errors import UserError
from execrl.benchmarks.problem import Problem
from execrl.benchmarks.prompts import build_prompt, stop_sequences
from execrl.harness import runfolder
from execrl.harness.records import ExecResult, Limits
from execrl.trainers import checkpoint, devices, distributed
from execrl.trainers.data import FINISHED, write_jsonl
from execrl.trainers.ppo_config import PPOConfig
from execrl.trainers.ppo_math import AdaptiveKLController, FixedKLController
from execrl.trainers.ppo_models import policy_and_reference
from execrl.trainers.rewards import REWARDS, mix_rewards
from execrl.trainers.rollout import PolicyWithValue, Rollout
from execrl.trainers.rollout_engines import HFRolloutEngine, RolloutEngine, make_rollout_engine
from execrl.trainers.tracking import METRICS_FILE, Tracker

# Files a PPO run writes into OUT besides the model folder; `--force` removes exactly these.
RUN_FILES = (
    "checkpoint",
    "checkpoint.tmp",
    "checkpoint.old",
    "tb",
    METRICS_FILE,
    "ppo_config.json",
    FINISHED,
    "rollouts.jsonl",  # ROLLOUTS
)
ROLLOUTS = "rollouts.jsonl"
"""--log-rollouts: one row per sampled program (step, task_id, program, reward and its `ExecResult`)."""


def prepare_out(out: Path, config: dict[str, Any], resume: bool, force: bool) -> str:
    """ "done" (a finished run of this config), "resume" or "fresh"; refuses to overwrite without --force.

    Two stamps (`execrl.harness.runfolder.claim`): train_config.json, written when the run finishes, and
    ppo_config.json, written at its start, which a `--resume` must match.
    """
    if not force and runfolder.claim(out, config, outputs=(), force=False, stamp=FINISHED, write=False):
        return "done"
    hint = "pass --resume to continue its run or --force to start over"
    started = runfolder.claim(
        out, config, outputs=RUN_FILES, force=force, stamp="ppo_config.json", any_content=True, hint=hint
    )
    if started and not resume:
        raise UserError(f"{out} holds an unfinished run of these settings; {hint}")
    if resume and (not started or checkpoint.checkpoint_policy_dir(out) is None):
        raise UserError(f"--resume: {out} has no checkpoint to resume from")
    return "resume" if resume else "fresh"


def mixed_rewards(
    cfg: PPOConfig,
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
        responses = [_response(p, program) for p, program in zip(problems, programs, strict=True)]
        scores = mix_rewards(
            scores, [float(s) for s in reward_model.score(prompts, responses)], cfg.reward_model_weight
        )
    if critic is not None and cfg.critic_weight:
        p_passed = critic.predict_proba(prompts, list(programs))[:, 3]  # columns in critic.CLASSES order
        scores = mix_rewards(scores, [float(p) for p in p_passed], cfg.critic_weight)
    return scores


def _response(problem: Problem, program: str) -> str:
    """What a reward model scores after the prompt: synth's program less the `def` line its prompt ends with, the
    body after the prompt where the completion continues it, else the whole program."""
    if problem.benchmark == "synth":
        return program[len(program.split("\n", 1)[0]) + 1 :]
    if problem.completes_prompt and program.startswith(problem.prompt):
        return program[len(problem.prompt) :]
    return program


@dataclass
class Run:
    """The live objects of a PPO run plus the loop state a checkpoint restores."""

    cfg: PPOConfig
    out: Path
    accelerator: Any
    policy: Any
    """The policy as prepared by accelerate (DDP-wrapped on several GPUs)."""
    unwrapped: PolicyWithValue
    ref: Any
    """The frozen reference, called as a HF model: a model of its own, or with --lora-r the policy's LM with its
    adapters disabled (`execrl.trainers.lora.AdapterFreeReference`)."""
    tokenizer: Any
    optimizer: Any
    scheduler: Any
    pool: Any
    tracker: Tracker
    problems: list[Problem]
    eval_problems: dict[str, list[Problem]]
    """Benchmark -> its held-out problems of the in-loop evaluation."""
    kl_ctl: FixedKLController | AdaptiveKLController
    rng: random.Random
    """Draws each iteration's prompts."""
    reward_model: Any = None
    critic: Any = None
    engine: RolloutEngine | None = None
    """What samples (`--rollout`, execrl.trainers.rollout_engines); None: HF generate on the policy itself."""
    step: int = 0
    best_reward: float = float("-inf")
    since_best: int = 0
    recent_rewards: list[float] = field(default_factory=list)
    rollout_rows: list[dict[str, Any]] = field(default_factory=list)
    """--log-rollouts: this iteration's rows on this rank, until `write_rollouts`."""

    def sample(self, problems: Sequence[Problem], samples_per_prompt: int, temperature: float) -> Rollout:
        """The policy's `samples_per_prompt` samples for each problem's prompt, cut at its stops (rollouts and the
        in-loop evaluation alike), from the rollout engine."""
        if self.engine is None:
            self.engine = HFRolloutEngine(self.unwrapped.lm, self.tokenizer)
        with self.accelerator.autocast():  # HF generate in the update's precision (a no-op in fp32)
            return self.engine.sample(
                [build_prompt(p) for p in problems],
                [stop_sequences(p) for p in problems],
                samples_per_prompt=samples_per_prompt,
                max_new_tokens=self.cfg.max_new_tokens,
                temperature=temperature,
                max_prompt_tokens=self.cfg.max_prompt_tokens,
            )

    def sync_engine(self) -> None:
        """Give the rollout engine the policy's updated weights (after every update, before the next rollout)."""
        if self.engine is not None:
            self.engine.load_weights(self.unwrapped.lm)

    def to_program(self, problem: Problem, text: str) -> str:
        """The program of one sampled continuation, assembled as `execrl generate` + `execrl evaluate` would."""
        if problem.benchmark == "synth":
            from execrl.benchmarks.synth import synth_program

            return synth_program(problem, text)
        from execrl.harness.extract import program_of

        return program_of(problem, text)

    def execute(self, problems: Sequence[Problem], programs: Sequence[str]) -> list[ExecResult]:
        from execrl.harness.sandbox.pool import execute_many

        return execute_many(problems, programs, pool=self.pool)

    def score(self, problems: Sequence[Problem], programs: Sequence[str], results: Sequence[ExecResult]) -> list:
        """The rewards (`mixed_rewards`); with --log-rollouts each sample is also kept for `write_rollouts`."""
        scores = mixed_rewards(self.cfg, problems, programs, results, self.reward_model, self.critic)
        if self.cfg.log_rollouts:
            rank = self.accelerator.process_index
            for problem, program, result, reward in zip(problems, programs, results, scores, strict=True):
                row = {"step": self.step + 1, "rank": rank, "task_id": problem.task_id, "program": program}
                self.rollout_rows.append({**row, "reward": reward, **result.to_json()})
        return scores

    def write_rollouts(self) -> None:
        """Once an iteration, on every rank: the main process appends every rank's rows to OUT/rollouts.jsonl."""
        if not self.cfg.log_rollouts:
            return
        rows, self.rollout_rows = distributed.gather_all(self.accelerator, self.rollout_rows), []
        if self.accelerator.is_main_process:
            with open(self.out / ROLLOUTS, "a", encoding="utf-8") as f:
                f.writelines(json.dumps(row) + "\n" for row in rows)

    def quality(self, programs: Sequence[str]) -> list:
        from execrl.harness.scoring.quality import quality_many

        return quality_many(list(programs))

    def track_plateau(self, mean_reward: float, cfg: PPOConfig) -> None:
        self.recent_rewards = (self.recent_rewards + [mean_reward])[-cfg.plateau_window :]
        moving = sum(self.recent_rewards) / len(self.recent_rewards)
        if moving > self.best_reward + cfg.min_improvement:
            self.best_reward, self.since_best = moving, 0
        else:
            self.since_best += 1

    def plateaued(self, cfg: PPOConfig) -> bool:
        return bool(cfg.patience) and self.since_best >= cfg.patience

    def loop_state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "kl_coef": self.kl_ctl.value,
            "best_reward": self.best_reward,
            "since_best": self.since_best,
            "recent_rewards": self.recent_rewards,
            "prompt_rng": self.rng.getstate(),
            "world_size": self.accelerator.num_processes,
        }

    def save_checkpoint(self) -> None:
        """On every rank (each hands over its RNG states); the main process writes."""
        ranks = distributed.gather_rank_states(self.accelerator, self.rng)
        if self.accelerator.is_main_process:
            checkpoint.save_checkpoint(
                self.out, self.unwrapped, self.tokenizer, self.optimizer, self.scheduler, self.loop_state(), ranks
            )
        self.accelerator.wait_for_everyone()

    def save_final(self) -> None:
        """OUT itself becomes an ordinary Hugging Face model folder (+ value_head.pt with GAE's value head); a LoRA
        policy's adapters are merged into it."""
        if self.accelerator.is_main_process:
            checkpoint.save_policy(self.out, self.unwrapped, self.tokenizer, merge_adapters=True)
        self.accelerator.wait_for_everyone()


@contextlib.contextmanager
def setup_run(
    cfg: PPOConfig,
    out: Path,
    config: dict[str, Any],
    resume: bool,
    sources: tuple[list[Problem], dict[str, list[Problem]]] | None = None,
) -> Iterator[Run]:
    """Build (or restore) the policy, reference, optimizer, sandbox pool and tracker; close them after.
    `sources`: `run_problems(cfg)` when the caller has it already."""
    from execrl.harness.sandbox.pool import open_pool
    from execrl.trainers.critic import Critic
    from execrl.trainers.reward_model import RewardModel

    accelerator = devices.seeded_accelerator(cfg)
    distributed.check_ppo_launch(accelerator, resume)
    # Exact resume on CPU needs deterministic kernels; warn_only keeps CUDA ops without one usable.
    torch.use_deterministic_algorithms(True, warn_only=True)

    problems, eval_problems = sources or run_problems(cfg)
    rank, world = accelerator.process_index, accelerator.num_processes
    distributed.check_shard(len(problems), world, cfg.batch_size // cfg.samples_per_prompt, "the training problems")
    problems = distributed.shard(problems, rank, world)  # each rank draws its prompts from its own share

    tokenizer = devices.load_tokenizer(cfg.model)
    policy_dir = checkpoint.checkpoint_policy_dir(out) if resume else None
    # weights in the training precision; with --lora-r the reference is the policy's base (no second copy)
    policy, ref = policy_and_reference(cfg, accelerator.device, accelerator.mixed_precision, policy_dir)
    prepared, optimizer, scheduler = devices.prepare_optimiser(accelerator, policy, cfg, cfg.iterations)
    kl_ctl = (
        AdaptiveKLController(cfg.kl_coef, cfg.kl_target, cfg.kl_horizon)
        if cfg.adaptive_kl
        else FixedKLController(cfg.kl_coef)
    )
    reward_model = RewardModel.load(cfg.reward_model, cfg.device) if cfg.reward_model else None
    critic = Critic.load(cfg.critic, cfg.device) if cfg.critic else None

    distributed.seed_rank(accelerator, cfg.seed)  # the models are built alike; each rank samples its own
    state = checkpoint.load_trainer_state(out, optimizer, scheduler) if resume else {}
    if state:
        state = distributed.restore_rank_state(out / checkpoint.CHECKPOINT_DIR, accelerator, state)
    rng = random.Random(distributed.rank_seed(cfg.seed, rank))
    if state:
        rng.setstate(state["prompt_rng"])
        kl_ctl.value = state["kl_coef"]
    main = accelerator.is_main_process
    tracker = Tracker(out, config, resume_step=state.get("step", 0), enabled=main)
    if main and state and (out / ROLLOUTS).is_file():  # steps after the checkpoint are sampled again: drop them
        write_jsonl(out / ROLLOUTS, [row for _, row in iter_jsonl(out / ROLLOUTS) if row["step"] <= state["step"]])
    workers = distributed.pool_workers(cfg.workers, distributed.local_processes())  # ranks share the cores
    with open_pool(cfg.sandbox, workers, Limits(timeout=cfg.timeout), ray_address=cfg.ray_address) as pool:
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
            engine=make_rollout_engine(cfg, policy.lm, tokenizer, accelerator),
            step=state.get("step", 0),
            best_reward=state.get("best_reward", float("-inf")),
            since_best=state.get("since_best", 0),
            recent_rewards=state.get("recent_rewards", []),
        )
        try:
            yield run
        finally:
            tracker.close()


def run_problems(cfg: PPOConfig) -> tuple[list[Problem], dict[str, list[Problem]]]:
    """(training problems, benchmark -> held-out problems of the in-loop evaluation), refusing a training problem
    that is also held out unless --allow-eval-overlap. The evaluation is loaded only when it runs."""
    from execrl.trainers.sources import check_overlap, held_out_problems, training_problems

    problems = training_problems(cfg, synth_seed=cfg.synth_seed)
    wanted = {f.strip() for f in cfg.families.split(",") if f.strip()}
    if wanted:
        problems = [p for p in problems if p.metadata["family"] in wanted]
        if not problems:
            raise UserError(f"--families {cfg.families}: no synth family of that name")
    if not cfg.eval_every:
        return problems, {}
    try:
        held = held_out_problems(cfg, synth_seed=cfg.synth_seed)
    except DataError as e:
        raise UserError(f"{e} (the in-loop evaluation needs the test split; --eval-every 0 turns it off)") from e
    for name, held_out in held.items():
        if wanted:
            held_out = [p for p in held_out if p.metadata["family"] in wanted]
        held[name] = held_out = held_out[: cfg.eval_problems]
        if not cfg.allow_eval_overlap:
            check_overlap(problems, held_out, f"the in-loop evaluation's {name} test split")
    return problems, held


def evaluate_pass_at_1(cfg: PPOConfig, run: Run) -> dict[str, float]:
    """`eval/<benchmark>/pass@1` on each benchmark's held-out problems: mean over problems of c / n (the unbiased
    estimator for k = 1, Chen et al. 2021), sampled under a forked RNG so evaluating never changes the training
    trajectory. Under data parallel each rank evaluates its share of the problems and the verdicts are gathered
    (every rank busy, none waiting on rank 0 alone)."""
    metrics = {}
    rank, world = run.accelerator.process_index, run.accelerator.num_processes
    for name, all_problems in run.eval_problems.items():
        if not all_problems:
            metrics[f"eval/{name}/pass@1"] = float("nan")
            continue
        eval_problems = distributed.shard(all_problems, rank, world)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(distributed.rank_seed(cfg.seed + 1_000_003 * run.step, rank))
            passed = []
            for i in range(0, len(eval_problems), 64):
                chunk = eval_problems[i : i + 64]
                rollout = run.sample(chunk, cfg.eval_samples, cfg.eval_temperature)
                problems = [p for p in chunk for _ in range(cfg.eval_samples)]
                programs = [run.to_program(p, t) for p, t in zip(problems, rollout.texts, strict=True)]
                passed += [r.passed for r in run.execute(problems, programs)]
        passed = distributed.gather_all(run.accelerator, passed)
        metrics[f"eval/{name}/pass@1"] = sum(passed) / len(passed)
    return metrics
