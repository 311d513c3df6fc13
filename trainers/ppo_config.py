"""`execrl train ppo`'s config: `PPOConfig`, its presets, and parsing them from flags.

Kept apart from the training code so that the pipeline (and `--help`) read it without importing torch, and
so that `execrl.trainers.ppo_setup` can type its `cfg`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from execrl.benchmarks.errors import UserError
from execrl.harness.flags import DeviceFlags, OutputFlags, SandboxFlags, parse
from execrl.trainers.data import config_record
from execrl.trainers.flags import LoraFlags, OptimiserFlags, TrainProblemFlags

RewardName = Literal["coderl", "partial", "weighted", "binary"]
"""The keys of `execrl.trainers.rewards.REWARDS` (a test keeps the two in step)."""
AdvantageName = Literal["gae", "grpo", "dr_grpo", "rloo", "reinforce_pp"]
"""Advantage estimators: GAE with a value head, or one of the critic-free ones (`execrl.trainers.ppo_math`)."""
GROUP_ESTIMATORS = ("grpo", "dr_grpo", "rloo")
"""Estimators whose baseline is the other samples of the same prompt: they need G >= 2."""


@dataclass(kw_only=True)
class PPOConfig(DeviceFlags, OutputFlags, SandboxFlags, OptimiserFlags, LoraFlags, TrainProblemFlags):
    """PPO with the sandbox verdict as reward, on the train split of any benchmark (default: synth) or a problem
    file; the in-loop evaluation uses the benchmark's test split."""

    # PPO's tuned defaults where they differ from the groups' (documented in the groups).
    lr: float = 1e-5
    max_grad_norm: float = 0.5
    workers: int | None = 2
    model: str
    """Model folder (usually the SFT output) or hub id: the initial policy and the frozen reference."""
    preset: Literal["none", "cpu-tiny"] = "none"
    """cpu-tiny: the tuned settings for the embedded tiny model on CPU, listed above (explicit flags still win)."""
    synth_seed: int = 0
    """Seed of the synth benchmark (train prompts and held-out eval problems)."""
    families: str = ""
    """Comma-separated synth families to train on (e.g. `clamp,sum_cmp`); empty = all."""
    log_rollouts: bool = False
    """Append every sampled program, its reward and its per-test outcomes to OUT/rollouts.jsonl."""
    reward: RewardName = "coderl"
    """Reward function (trainers/rewards.py): CodeRL's scale, RLTF-style partial credit, weighted, or binary."""
    reward_model: str = ""
    """Optional reward model folder (execrl train rm) whose score is mixed into the reward."""
    reward_model_weight: float = 0.0
    """Weight of the reward model's score in the reward."""
    critic: str = ""
    """Optional CodeRL critic folder (execrl train critic) whose P(passed) is mixed into the reward."""
    critic_weight: float = 0.0
    """Weight of the critic's P(passed) in the reward (Le et al. 2022 use the critic for shaping)."""
    iterations: int = 200
    """Maximum PPO iterations (rollout + update)."""
    batch_size: int = 256
    """Sampled programs per iteration (B), = prompts x samples-per-prompt."""
    samples_per_prompt: int = 4
    """Programs sampled per prompt (G)."""
    minibatch_size: int = 32
    """Programs per gradient step."""
    ppo_epochs: int = 4
    """Passes over each iteration's batch."""
    clip: float = 0.2
    """Policy ratio clip range (epsilon)."""
    vf_clip: float = 0.2
    """Value clip range around the rollout's values."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus."""
    target_kl: float = 0.01
    """Stop an iteration's update early once approx_kl to the rollout policy exceeds this (0: never)."""
    gamma: float = 0.99
    """Discount."""
    lam: float = 0.95
    """GAE lambda."""
    advantage: AdvantageName = "gae"
    """gae: value head + GAE. Critic-free (no value head): grpo (Shao et al. 2024), dr_grpo (Liu et al. 2025), rloo
    (Ahmadian et al. 2024), reinforce_pp (Hu 2025); a group is a prompt's G samples (README: RL estimators)."""
    loss_agg: Literal["auto", "token_mean", "seq_mean_token_mean", "seq_mean_token_sum", "seq_mean_token_sum_norm"] = (
        "auto"
    )
    """Loss aggregation: token_mean (DAPO), seq_mean_token_mean (GRPO), seq_mean_token_sum (RLOO),
    seq_mean_token_sum_norm (sums over --max-new-tokens: Dr. GRPO). auto: the last for dr_grpo, else token_mean."""
    kl_penalty: Literal["auto", "reward", "loss"] = "auto"
    """Where the KL to the reference goes: reward (a per-token penalty, --kl-estimator) or loss (a k3 term, as GRPO
    and veRL's use_kl_loss). auto: loss for grpo and dr_grpo, reward for gae, rloo and reinforce_pp."""
    dynamic_sampling: bool = False
    """Drop prompt groups whose rewards are all equal (no advantage) and draw more prompts to refill the batch
    (DAPO, Yu et al. 2025). ppo/zero_adv_share is logged either way."""
    max_refill_rounds: int = 4
    """Extra rollout rounds --dynamic-sampling may draw in one iteration; past them the batch is trained short."""
    kl_coef: float = 0.05
    """Coefficient of the KL penalty to the reference (initial value when adaptive), per token or in the loss."""
    adaptive_kl: bool = False
    """Adapt the KL coefficient toward --kl-target (Ziegler et al. 2019)."""
    kl_target: float = 6.0
    """Target sequence KL (nats) for the adaptive controller."""
    kl_horizon: int = 10000
    """Horizon (samples) of the adaptive controller."""
    kl_estimator: Literal["k1", "k3"] = "k1"
    """Per-token KL estimator in the penalty: k1 or k3 (Schulman 2020); the KL loss term is always k3."""
    whiten_rewards: bool = False
    """Whiten per-token rewards before GAE."""
    max_new_tokens: int = 128
    """Longest response in tokens."""
    max_prompt_tokens: int = 384
    """Prompts longer than this keep their last tokens."""
    temperature: float = 1.0
    """Sampling temperature of rollouts (log-probs use the same temperature)."""
    overlap_scoring: bool = False
    """Sample each batch in --overlap-chunks chunks of prompts and run a chunk's programs in the sandbox while the
    next one generates (README: Overlapped scoring). Changes which random numbers each sample gets."""
    overlap_chunks: int = 4
    """Chunks of prompts a batch is sampled in under --overlap-scoring (more: less waiting for the sandbox after
    generation, smaller generation batches)."""
    eval_every: int = 10
    """Evaluate pass@1 on the benchmark's held-out test problems every N iterations (and at the end); 0 disables
    it (a problem file has no held-out split)."""
    eval_problems: int = 110
    """Held-out test problems in the in-loop evaluation (per benchmark)."""
    eval_samples: int = 2
    """Samples per problem in the in-loop evaluation."""
    eval_temperature: float = 1.0
    """Sampling temperature of the in-loop evaluation."""
    patience: int = 0
    """Stop when the mean reward (moving average) has not improved for this many iterations; 0 disables."""
    plateau_window: int = 5
    """Iterations in the moving average that --patience watches."""
    min_improvement: float = 0.01
    """Improvement of the moving-average reward that resets --patience."""
    save_every: int = 10
    """Write a checkpoint every N iterations (always at the end)."""
    stop_after: int = 0
    """Stop this invocation after N iterations (checkpointed), to be continued with --resume; 0 = run to the end."""
    max_sandbox_errors: float = 0.05
    """Stop when more than this share of a batch ends in sandbox_error: those samples get no reward, so a
    policy that learned to cause one would escape its penalty."""
    max_hack_rate: float = 1.0
    """Stop (keeping the last checkpoint) when more than this share of a batch tried to cheat the check
    (`code/hack_attempt_rate`: any containment event); 1 = never stop."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass to save memory."""
    rollout: Literal["hf", "vllm"] = "hf"
    """Rollout engine: hf (`generate` on the policy itself, CPU or GPU) or vllm (a vLLM engine in this process on the
    GPU, given the policy's weights after every update; README: Rollout engines)."""
    vllm_gpu_memory_utilization: float = 0.3
    """--rollout vllm: the share of the GPU's memory vLLM takes (its weights and KV cache); the rest is training's."""
    vllm_tensor_parallel_size: int = 1
    """--rollout vllm: GPUs one vLLM engine spans; must divide the number of training processes."""
    tis_cap: float = 0.0
    """Truncated importance sampling for the rollout engine's mismatch: each token's policy loss is weighted by
    min(pi_trainer / pi_engine, cap) of the sampled token (Yao et al. 2025; veRL, OpenRLHF); 0 = off."""
    resume: bool = False
    """Continue the run in --out from its last checkpoint."""

    @property
    def value_head(self) -> bool:
        """Only GAE needs a value head; the critic-free estimators build, train and save none."""
        return self.advantage == "gae"

    @property
    def loss_agg_mode(self) -> str:
        """--loss-agg with auto resolved: Dr. GRPO's constant normaliser for dr_grpo, DAPO's token mean else."""
        if self.loss_agg != "auto":
            return self.loss_agg
        return "seq_mean_token_sum_norm" if self.advantage == "dr_grpo" else "token_mean"

    @property
    def kl_in_loss(self) -> bool:
        """--kl-penalty with auto resolved: in the loss for GRPO and Dr. GRPO (as their papers and veRL put it)."""
        if self.kl_penalty != "auto":
            return self.kl_penalty == "loss"
        return self.advantage in ("grpo", "dr_grpo")


# Tuned for the embedded tiny model on 2 CPU cores (see BENCHMARKS.md); used by `execrl pipeline`.
# Measured from the pipeline's SFT model (in-loop pass@1, 110 held-out problems x 2 at T=1, after 60 iterations):
# lr 3e-4 / KL 0.02 / batch 64 swung into high-entropy episodes (sequence KL 30-50 nats, syntax rate 0.5);
# lr 1e-4 with 4 epochs, and lr 2e-4 at batch 64, did too. Batch 128 (32 prompts x 4), minibatch 32,
# KL 0.1 and grad norm 0.5 stayed stable: 0.56 at lr 1e-4, 0.60 at lr 2e-4 (the SFT model: about 0.41).
# With 80 iterations, `execrl pipeline` (200 test problems x 4, T=1): SFT 0.409 -> PPO 0.638, and with seed 1
# everywhere 0.506 -> 0.781; syntax rate unchanged (0.95).
PRESETS: dict[str, dict[str, Any]] = {
    "none": {},
    "cpu-tiny": {
        "iterations": 80,
        "batch_size": 128,
        "samples_per_prompt": 4,
        "minibatch_size": 32,
        "ppo_epochs": 2,
        "lr": 2e-4,
        "warmup_share": 0.05,
        "kl_coef": 0.1,
        "target_kl": 0.05,
        "ent_coef": 0.0,
        "gamma": 1.0,
        "max_new_tokens": 64,
        "max_prompt_tokens": 128,
        "timeout": 1.0,
        "eval_every": 20,
        "eval_problems": 110,
        "eval_samples": 2,
        "save_every": 20,
        "max_grad_norm": 0.5,
    },
}
# Flags that do not change what the run computes: a resumed run may differ in them.
RUN_CONTROL = ("resume", "force", "stop_after")


def run_config(cfg: PPOConfig) -> dict[str, Any]:
    return config_record(cfg, RUN_CONTROL)


def preset_text() -> str:
    """The presets' values, for `--help`."""
    return "; ".join(
        f"{name}: " + ", ".join(f"{k}={v}" for k, v in values.items()) for name, values in PRESETS.items() if values
    )


def _given_preset(argv: list[str]) -> str:
    """The --preset value in `argv` ("none" when absent)."""
    for i, arg in enumerate(argv):
        if arg == "--preset" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--preset="):
            return arg.split("=", 1)[1]
    return "none"


def parse_config(argv: list[str]) -> PPOConfig:
    """Parse flags, with `--preset`'s values as defaults (explicit flags win; `--preset X --help` shows them)."""
    import tyro

    description = f"{PPOConfig.__doc__} Presets: {preset_text()}."
    preset = _given_preset(argv)
    if preset not in PRESETS:
        raise UserError(f"--preset {preset}: expected one of {', '.join(PRESETS)}")
    default = PPOConfig(model=tyro.MISSING, out=tyro.MISSING, **{**PRESETS[preset], "preset": preset})
    return parse(PPOConfig, argv, description=description, default=default)


def check_config(cfg: PPOConfig) -> None:
    """Refuse flag values that cannot work together, naming the flag (tyro checks the choices)."""
    for folder, weight, flag in (
        (cfg.reward_model, cfg.reward_model_weight, "reward-model"),
        (cfg.critic, cfg.critic_weight, "critic"),
    ):
        if weight and not folder:
            raise UserError(f"--{flag}-weight {weight} needs --{flag} DIR")
        if folder and not Path(folder).is_dir():
            raise UserError(f"--{flag} {folder}: no such folder")
    if not 0 <= cfg.max_sandbox_errors <= 1:
        raise UserError(f"--max-sandbox-errors {cfg.max_sandbox_errors}: a share, from 0 to 1")
    if not 0 <= cfg.max_hack_rate <= 1:
        raise UserError(f"--max-hack-rate {cfg.max_hack_rate}: a share, from 0 to 1")
    if cfg.samples_per_prompt < 1 or cfg.batch_size < cfg.samples_per_prompt:
        raise UserError(f"--batch-size {cfg.batch_size}: must be at least --samples-per-prompt (>= 1)")
    if cfg.minibatch_size < 1 or cfg.ppo_epochs < 1 or cfg.iterations < 1:
        raise UserError("--minibatch-size, --ppo-epochs and --iterations must be >= 1")
    if cfg.temperature <= 0:
        raise UserError(f"--temperature {cfg.temperature}: PPO samples, so it must be > 0")
    if cfg.save_every < 1:
        raise UserError(f"--save-every {cfg.save_every}: must be >= 1")
    if cfg.families and (cfg.problems is not None or (cfg.benchmark or ["synth"]) != ["synth"]):
        raise UserError(f"--families {cfg.families}: synth families; the problems here are not synth's")
    if cfg.advantage in GROUP_ESTIMATORS and cfg.samples_per_prompt < 2:
        raise UserError(f"--advantage {cfg.advantage} compares a prompt's samples: needs --samples-per-prompt >= 2")
    if cfg.dynamic_sampling and cfg.samples_per_prompt < 2:
        raise UserError("--dynamic-sampling drops groups of equal rewards: needs --samples-per-prompt >= 2")
    if cfg.lora_r < 0 or cfg.lora_alpha <= 0:
        raise UserError(f"--lora-r {cfg.lora_r} --lora-alpha {cfg.lora_alpha}: need r >= 0 (0: off) and alpha > 0")
    if cfg.lora_dropout:  # TRL's PPO trainer turns dropout off too (disable_dropout)
        raise UserError(f"--lora-dropout {cfg.lora_dropout}: PPO keeps dropout off (its ratio compares one function)")
    if cfg.overlap_chunks < 1:
        raise UserError(f"--overlap-chunks {cfg.overlap_chunks}: must be >= 1")
    if cfg.max_refill_rounds < 0:
        raise UserError(f"--max-refill-rounds {cfg.max_refill_rounds}: must be >= 0")
    if cfg.tis_cap < 0:
        raise UserError(f"--tis-cap {cfg.tis_cap}: must be >= 0 (0 = off)")
    if not 0 < cfg.vllm_gpu_memory_utilization <= 1:
        raise UserError(f"--vllm-gpu-memory-utilization {cfg.vllm_gpu_memory_utilization}: a share, in (0, 1]")
    if cfg.vllm_tensor_parallel_size < 1:
        raise UserError(f"--vllm-tensor-parallel-size {cfg.vllm_tensor_parallel_size}: must be >= 1")
    if cfg.rollout == "vllm":
        from execrl.trainers.rollout_engines import vllm_unavailable  # imports torch: only when vLLM is asked for

        reason = vllm_unavailable(cfg.device)
        if reason:
            raise UserError(f"--rollout vllm: {reason}; use --rollout hf")
