"""Data parallel training under `accelerate launch`: what each rank draws, what they agree on, who writes.

Every rank (process) holds a whole replica of the policy; DDP (`Accelerator.prepare`) averages gradients after
every backward, so the replicas stay equal. What this module adds, so that N ranks compute N different batches
and one run folder:

- **Seeds.** Every rank seeds with `--seed` while the models are built (identical initial weights; DDP also
  broadcasts rank 0's at `prepare`), then re-seeds with `seed + rank` (`rank_seed`) before sampling, so ranks draw
  different samples. One process keeps the stream it always had.
- **Prompts.** Each rank draws from its own shard of the problems (`shard`: every `world`-th problem from its
  rank), with its own prompt RNG, so two ranks never draw the same prompt in an iteration — nor in a
  `--dynamic-sampling` refill, which draws unseen prompts from the rank's own shard. `--batch-size` is per rank:
  an iteration trains on `world x batch_size` programs (the global batch), like `per_device_train_batch_size`.
- **Lockstep.** DDP needs every rank to run the same number of backward passes: the update's minibatch count is
  the largest any rank has (`minibatches`; a rank with fewer repeats one with its loss scaled by 0, so it adds
  zero gradient), the target-KL early stop and the adaptive KL coefficient read the KL of the global batch
  (`mean_across`, `sum_across`), and an update runs only if every rank kept a sample (`every_rank_has`).
- **Metrics** are those of the global batch (`global_metrics`): rewards from every rank's samples, the rates and
  losses averaged over ranks (each rank's first draw has the same size), times the slowest rank's.
- **Writing.** Rank 0 alone writes metrics, TensorBoard, rollouts (`gather_all`: every rank's rows, tagged with
  `rank`), checkpoints and the final model; the others wait at barriers. `main_first` runs the run folder's
  claim on rank 0 and hands its answer to the others.
- **Resume.** A checkpoint holds every rank's RNG states and prompt RNG (`gather_rank_states`), restored to each
  rank (`restore_rank_state`); resuming with another number of processes is refused (the shards would differ).
- **Sandbox.** Each rank opens its own pool: `pool_workers` splits the machine's cores between the ranks on it.
- **The supervised trainers** (SFT, reward model, critic) split each batch of their seeded stream between the
  ranks (`batch_share`), log the loss averaged over ranks, and write from rank 0; their checkpoints are
  accelerate's `save_state`, which holds every rank's RNG states already.
- **DeepSpeed** (`trainers/accelerate/zero*.yaml`): `fill_deepspeed_auto` fills what accelerate would take from a
  DataLoader; ZeRO-3 is refused where whole parameters are needed on every rank (`refuse_zero3`: PPO samples
  from its policy, the reward model and critic save it unwrapped), and SFT gathers them to save
  (`full_state_dict`).

torch is imported inside functions, like the rest of the trainers' shared modules.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from execrl.benchmarks.errors import UserError

T = TypeVar("T")


def rank_seed(seed: int, rank: int) -> int:
    """The sampling seed of `rank`: `seed + rank`, as accelerate's `set_seed(device_specific=True)` does."""
    return seed + rank


def seed_rank(accelerator: Any, seed: int) -> None:
    """After the models are built: re-seed this rank's RNGs for sampling (nothing to do in one process)."""
    if accelerator.num_processes > 1:
        from execrl.trainers.devices import seed_everything

        seed_everything(rank_seed(seed, accelerator.process_index))


def shard(items: Sequence[T], rank: int, world: int) -> list[T]:
    """Rank `rank`'s disjoint share of `items`: every `world`-th item from index `rank` (strided, so a list
    ordered by family or difficulty gives every rank a mix)."""
    return list(items[rank::world])


def check_shard(n_items: int, world: int, per_rank: int, what: str) -> None:
    """Refuse a run where some rank's shard of `n_items` holds fewer than the `per_rank` items it draws at once."""
    if n_items // world < per_rank:
        raise UserError(
            f"{what}: {n_items} problems over {world} processes leave {n_items // world} per process, fewer than "
            f"the {per_rank} prompts each draws (--batch-size / --samples-per-prompt); use fewer processes or a "
            "smaller batch"
        )


def main_first(device: str, fn: Callable[[], T]) -> T:
    """`fn()` on the main process only, its result (or its `UserError`) handed to every rank; before the
    `Accelerator` exists, so it sets up accelerate's process state itself (for `device`, as `make_accelerator`
    will). In one process just `fn()`."""
    from accelerate import PartialState
    from execrl.trainers.devices import pick_device

    state = PartialState(cpu=pick_device(device).type == "cpu")
    if state.num_processes == 1:
        return fn()
    import torch.distributed as dist

    outcome: list[Any] = [None]
    if state.is_main_process:
        try:
            outcome = [("ok", fn())]
        except UserError as e:
            outcome = [("error", str(e))]
    dist.broadcast_object_list(outcome, src=0)
    kind, value = outcome[0]
    if kind == "error":
        raise UserError(value)
    return value


def batch_share(idx: Sequence[int], rank: int, world: int) -> list[int]:
    """Rank `rank`'s share of one batch of the supervised trainers' seeded stream (every rank draws the same
    batch, so `--batch-size` stays the global batch): `idx` padded to a multiple of `world` by repeating its
    first items, as `torch.utils.data.DistributedSampler` pads, then every `world`-th item from `rank` — so no
    rank is ever given an empty batch."""
    idx = list(idx)
    padded = idx + (idx * world)[: -len(idx) % world]
    return padded[rank::world]


def _per_rank(accelerator: Any, value: Any) -> list[Any]:
    """`value` of every rank, in rank order (every rank must call it)."""
    if accelerator.num_processes == 1:
        return [value]
    import torch.distributed as dist

    values: list[Any] = [None] * accelerator.num_processes
    dist.all_gather_object(values, value)
    return values


def sum_across(accelerator: Any, values: Sequence[float]) -> list[float]:
    """Each of `values` summed over ranks."""
    if accelerator.num_processes == 1:
        return [float(v) for v in values]
    import torch

    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=accelerator.device)
    return [float(v) for v in accelerator.reduce(t, "sum")]


def mean_across(accelerator: Any, value: float) -> float:
    """`value` averaged over ranks (the same number on every rank after)."""
    return sum_across(accelerator, [value])[0] / accelerator.num_processes


def every_rank_has(accelerator: Any, n: int) -> bool:
    """Whether `n` > 0 on every rank: an update runs on all ranks or on none."""
    return sum_across(accelerator, [float(n > 0)])[0] == accelerator.num_processes


def minibatches(accelerator: Any, b_inds: Any, minibatch_size: int) -> list[tuple[Any, float]]:
    """(minibatch indices, loss weight) for one epoch over `b_inds` (shuffled already, not empty): slices of
    `minibatch_size`, then as many repeats of the first, weighted 0, as this rank is short of the largest count
    on any rank. Weight 0 keeps the rank in DDP's gradient all-reduce without adding to it (DDP then averages
    over all ranks, as `torch.distributed.algorithms.Join` does for uneven inputs)."""
    local = [(b_inds[i : i + minibatch_size], 1.0) for i in range(0, len(b_inds), minibatch_size)]
    wanted = len(local)
    if accelerator.num_processes > 1:
        wanted = max(_per_rank(accelerator, wanted))
    return local + [(local[0][0], 0.0)] * (wanted - len(local))


REWARD_KEYS = ("ppo/mean_reward", "ppo/reward_std")
SUMMED_KEYS = ("ppo/kept_groups", "ppo/drawn_groups")
LARGEST_PREFIXES = ("time/", "ppo/refill_rounds", "ppo/minibatch_steps")


def combine_rank_metrics(rows: Sequence[dict[str, float]], rewards: Sequence[Sequence[float]]) -> dict[str, float]:
    """One metrics row for the global batch from each rank's row and each rank's rewards (None-free):
    mean and sample std of all rewards; counts of groups summed; times, refill rounds and step counts the
    largest (the iteration waits for the slowest rank); every other metric averaged over the ranks that have
    it as a number (each rank's first draw has the same size, so a mean of rates is the global rate)."""
    every = [r for rank in rewards for r in rank]
    combined: dict[str, float] = {}
    for name in dict.fromkeys(k for row in rows for k in row):  # first-seen order
        if name in REWARD_KEYS:
            continue
        values = [float(row[name]) for row in rows if name in row and not math.isnan(float(row[name]))]
        if not values:
            combined[name] = float("nan")
        elif name in SUMMED_KEYS:
            combined[name] = sum(values)
        elif name.startswith(LARGEST_PREFIXES):
            combined[name] = max(values)
        else:
            combined[name] = sum(values) / len(values)
    mean = sum(every) / len(every) if every else float("nan")
    std = math.sqrt(sum((r - mean) ** 2 for r in every) / (len(every) - 1)) if len(every) > 1 else 0.0
    return {**combined, "ppo/mean_reward": mean, "ppo/reward_std": std}


def global_metrics(accelerator: Any, metrics: dict[str, float], rewards: Sequence[float]) -> dict[str, float]:
    """This rank's iteration `metrics` made the global batch's (`combine_rank_metrics`), the same on every
    rank (so the plateau and hack-rate stops agree); unchanged in one process. `rewards`: this rank's given
    rewards, which `metrics` summarised as ppo/mean_reward and ppo/reward_std."""
    if accelerator.num_processes == 1:
        return metrics
    per_rank = _per_rank(accelerator, (metrics, list(rewards)))
    combined = combine_rank_metrics([m for m, _ in per_rank], [r for _, r in per_rank])
    return {name: combined[name] for name in metrics} | combined


def gather_all(accelerator: Any, items: list[T]) -> list[T]:
    """Every rank's `items`, rank 0's first, on every rank (rollout rows for the main process to write, the
    in-loop evaluation's verdicts)."""
    return [item for rank_items in _per_rank(accelerator, items) for item in rank_items]


def gather_rank_states(accelerator: Any, prompt_rng: Any) -> list[dict[str, Any]] | None:
    """Every rank's RNG states and prompt RNG state, in rank order, for the checkpoint (None in one process,
    whose states the trainer state holds already)."""
    if accelerator.num_processes == 1:
        return None
    from execrl.trainers.checkpoint import rng_states

    return _per_rank(accelerator, {"rng": rng_states(), "prompt_rng": prompt_rng.getstate()})


def restore_rank_state(checkpoint_dir: Path, accelerator: Any, state: dict[str, Any]) -> dict[str, Any]:
    """The loop state `state` of a checkpoint with this rank's RNG states set and its prompt RNG state in
    `state["prompt_rng"]`; refuses a checkpoint written by another number of processes."""
    world = int(state.get("world_size", 1))
    if world != accelerator.num_processes:
        raise UserError(
            f"--resume: the checkpoint in {checkpoint_dir.parent} was written by {world} process(es); launch "
            f"{world} (accelerate launch --num_processes {world}): each holds its own share of the prompts"
        )
    if world == 1:
        return state
    import torch
    from execrl.trainers.checkpoint import RANKS_FILE, set_rng_states

    # weights_only=False: RNG states (numpy's included) written by `gather_rank_states`, never downloaded.
    mine = torch.load(checkpoint_dir / RANKS_FILE, map_location="cpu", weights_only=False)[accelerator.process_index]
    set_rng_states(mine["rng"])
    return {**state, "prompt_rng": mine["prompt_rng"]}


def zero_stage(accelerator: Any) -> int:
    """The DeepSpeed ZeRO stage of the launch (`trainers/accelerate/zero*.yaml`); 0 without DeepSpeed."""
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    return int(plugin.zero_stage) if plugin is not None else 0


def refuse_zero3(accelerator: Any, trainer: str) -> None:
    """`trainer` keeps whole parameters on every rank (it samples from the model, or saves it unwrapped), which
    ZeRO-3 shards: refused, naming the config that works."""
    if zero_stage(accelerator) == 3:
        raise UserError(
            f"{trainer} under DeepSpeed ZeRO-3: it needs the whole parameters on every rank (sampling, the in-loop "
            "evaluation, saving), which ZeRO-3 shards; launch with trainers/accelerate/zero2.yaml or ddp.yaml"
        )


def check_ppo_launch(accelerator: Any, resume: bool) -> None:
    """PPO runs under DDP and ZeRO-2; its checkpoint holds one copy of the optimizer state, which ZeRO shards, so
    a DeepSpeed run cannot resume from it."""
    refuse_zero3(accelerator, "execrl train ppo")
    if resume and zero_stage(accelerator):
        raise UserError(
            "--resume under DeepSpeed: PPO's checkpoint keeps rank 0's optimizer state, which ZeRO shards; resume "
            "runs launched with trainers/accelerate/ddp.yaml, or start over with --force"
        )


def fill_deepspeed_auto(accelerator: Any, max_grad_norm: float) -> None:
    """Fill the shipped DeepSpeed configs' "auto" values that accelerate fills only from a prepared DataLoader
    (our trainers batch themselves): one micro-batch per backward, and the trainer's --max-grad-norm as
    DeepSpeed's gradient clipping (under DeepSpeed, `clip_grad_norm_` only reports the norm)."""
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is not None:
        fill_auto(plugin.deepspeed_config, max_grad_norm)


def fill_auto(config: dict[str, Any], max_grad_norm: float) -> None:
    """`fill_deepspeed_auto` on a DeepSpeed config dict."""
    if config.get("train_micro_batch_size_per_gpu", "auto") == "auto":
        config["train_micro_batch_size_per_gpu"] = 1
    if config.get("gradient_clipping", "auto") == "auto":
        config["gradient_clipping"] = float(max_grad_norm)


def full_state_dict(accelerator: Any, prepared: Any) -> dict[str, Any] | None:
    """Under ZeRO-3 the prepared model's parameters gathered into one 16-bit state dict (every rank must call
    it; the config's `stage3_gather_16bit_weights_on_model_save` is on); None otherwise (the model holds them)."""
    return accelerator.get_state_dict(prepared) if zero_stage(accelerator) == 3 else None


def local_processes() -> int:
    """Processes of this run on this machine (`LOCAL_WORLD_SIZE`, set by `accelerate launch` / torchrun)."""
    return max(int(os.environ.get("LOCAL_WORLD_SIZE", "1")), 1)


def pool_workers(workers: int | None, local_world: int, cpus: int | None = None) -> int | None:
    """Sandbox workers of one rank's pool: `--workers` as given (per process), or, for the default (all
    cores), the machine's cores split between the ranks on it, at least one each."""
    if workers is not None or local_world == 1:
        return workers
    return max((cpus or os.cpu_count() or 1) // local_world, 1)


def finish() -> None:
    """End the process group, if `accelerate launch` started one, before the process exits: a rank that exits with
    gloo's threads still running aborts ("terminate called without an active exception", SIGABRT), and the launcher
    then kills the other ranks and fails the run. Every rank first waits at a barrier for the others to be done."""
    import sys

    dist = sys.modules.get("torch.distributed")  # nothing to end in a process that never imported it
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return
    try:
        dist.barrier()
    finally:
        dist.destroy_process_group()
