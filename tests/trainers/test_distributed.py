"""Data parallel PPO: `accelerate launch --num_processes 2` on CPU (gloo) gives two ranks that draw disjoint prompts,
hold the same parameters after every step and leave one run folder; the rank logic checked against plain loops."""

from __future__ import annotations

import json
import math
import socket
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from execrl.benchmarks.errors import UserError
from execrl.benchmarks.synth import load_synth
from execrl.trainers import distributed
from execrl.trainers.devices import make_accelerator
from execrl.trainers.tracking import Tracker, read_metrics

DRIVER = Path(__file__).with_name("dp_ppo_driver.py")
PPO_FLAGS = (
    "--device cpu --batch-size 4 --samples-per-prompt 2 --minibatch-size 2 --ppo-epochs 2 --iterations 2 "
    "--max-new-tokens 16 --max-prompt-tokens 64 --workers 1 --log-rollouts --lr 1e-3 --target-kl 0.02 "
    "--eval-every 2 --eval-problems 6 --eval-samples 1 --save-every 1"
).split()


@pytest.mark.parametrize(
    ("n", "world"),
    [
        (10, 1),  # one process keeps every problem
        (10, 2),  # even split
        (11, 3),  # uneven: shares differ by one
        (3, 4),  # more ranks than problems: some shares are empty
    ],
)
def test_shards_are_disjoint_cover_the_problems_and_differ_in_size_by_at_most_one(n: int, world: int) -> None:
    shares = [distributed.shard(list(range(n)), rank, world) for rank in range(world)]
    assert sorted(i for share in shares for i in share) == list(range(n))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_a_share_too_small_for_the_prompts_a_rank_draws_is_refused_naming_the_processes() -> None:
    distributed.check_shard(8, 2, 4, "x")  # 4 each: enough
    with pytest.raises(UserError, match="7 problems over 2 processes leave 3 per process"):
        distributed.check_shard(7, 2, 4, "x")


def test_global_metrics_are_those_of_all_ranks_samples() -> None:
    """Rewards: mean and sample std of every rank's rewards (as one process would compute them from one batch);
    counts summed; times the slowest rank's; other metrics the mean over ranks that have a number."""
    rewards = [[1.0, -1.0, 0.5], [0.25, 1.0]]
    rows = [
        {"ppo/mean_reward": 0.1, "ppo/kept_groups": 2, "time/rollout": 3.0, "code/pass_rate": 0.5, "ppo/kl": 1.0},
        {"ppo/mean_reward": 0.6, "ppo/kept_groups": 1, "time/rollout": 5.0, "code/pass_rate": 0.0, "ppo/kl": math.nan},
    ]
    combined = distributed.combine_rank_metrics(rows, rewards)
    every = [r for rank in rewards for r in rank]
    assert combined["ppo/mean_reward"] == pytest.approx(statistics.mean(every))
    assert combined["ppo/reward_std"] == pytest.approx(statistics.stdev(every))
    assert combined["ppo/reward_std"] == pytest.approx(torch.tensor(every).std().item())  # ppo.py's estimator
    assert combined["ppo/kept_groups"] == 3
    assert combined["time/rollout"] == 5.0
    assert combined["code/pass_rate"] == 0.25
    assert combined["ppo/kl"] == 1.0  # the NaN of a rank without a number is left out


@pytest.mark.parametrize(
    ("workers", "local_world", "cpus", "expected"),
    [
        (None, 1, 16, None),  # one process: the pool's own default (every core)
        (None, 4, 16, 4),  # the cores split between the ranks on the machine
        (None, 3, 2, 1),  # more ranks than cores: one worker each, never zero
        (2, 4, 16, 2),  # --workers is per process, as given
    ],
)
def test_pool_workers_split_the_cores_between_the_ranks_unless_given(workers, local_world, cpus, expected) -> None:
    assert distributed.pool_workers(workers, local_world, cpus) == expected


def test_in_one_process_the_update_minibatches_are_the_plain_slices_and_nothing_is_reduced() -> None:
    accelerator = make_accelerator("cpu", "fp32")
    b_inds = torch.randperm(7)
    plan = distributed.minibatches(accelerator, b_inds, 3)
    assert [mb.tolist() for mb, _ in plan] == [b_inds[i : i + 3].tolist() for i in range(0, 7, 3)]
    assert [w for _, w in plan] == [1.0, 1.0, 1.0]
    assert distributed.mean_across(accelerator, 0.25) == 0.25
    metrics = {"ppo/mean_reward": 0.5}
    assert distributed.global_metrics(accelerator, metrics, [0.5]) is metrics
    with pytest.raises(UserError, match="written by 2 process"):
        distributed.restore_rank_state(Path("out/checkpoint"), accelerator, {"world_size": 2})


def test_a_disabled_tracker_writes_no_log_and_no_tensorboard(tmp_path) -> None:
    tracker = Tracker(tmp_path, {}, enabled=False)
    tracker.log(1, {"ppo/kl": 0.5})
    tracker.close()
    assert list(tmp_path.iterdir()) == []


# --- two ranks under accelerate launch ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 1-layer GPT-2 (26k parameters) with a tokenizer trained on synth prompts: built in a second."""
    from execrl.trainers.tiny import build_tiny_model

    corpus = [p.prompt for p in load_synth("train")[:200]]
    root = tmp_path_factory.mktemp("dp-model")
    return build_tiny_model(root / "model", corpus, vocab_size=300, n_layer=1, d_model=32, n_head=2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(model: Path, out: Path, hashes: Path, *extra: str) -> None:
    """`execrl train ppo` under `accelerate launch --num_processes 2` on CPU (torchrun with the gloo backend)."""
    hashes.mkdir(parents=True, exist_ok=True)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    launch += ["--main_process_port", str(_free_port())]
    argv = [*launch, str(DRIVER), str(hashes), "--model", str(model), "--out", str(out), *PPO_FLAGS, *extra]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]


def test_ranks_with_uneven_minibatch_counts_step_together_and_the_repeats_add_no_gradient(tmp_path) -> None:
    """Rank 0 has 3 minibatches, rank 1 one: rank 1 repeats its first twice at weight 0, both take 3 DDP steps,
    and the parameters equal a plain loop over the averaged gradients (a repeat's gradient counted as 0)."""
    from tests.trainers.dp_lockstep_driver import rank_data

    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    argv = [*launch, "--main_process_port", str(_free_port()), str(DRIVER.with_name("dp_lockstep_driver.py"))]
    done = subprocess.run([*argv, str(tmp_path)], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [[w for _, w in s["plan"]] for s in seen] == [[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]
    assert seen[0]["params"] == seen[1]["params"]
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)  # the same initial weights, trained by hand on the averaged gradients
    for step in range(3):
        grads = []
        for rank, s in enumerate(seen):
            mb_inds, weight = s["plan"][step]
            model.zero_grad()
            (model(rank_data(rank)[mb_inds]).pow(2).mean() * weight).backward()
            grads.append([p.grad.clone() for p in model.parameters()])
        with torch.no_grad():
            for p, *g in zip(model.parameters(), *grads, strict=True):
                p -= 0.1 * sum(g) / len(g)
    expected = [p.detach().flatten().tolist() for p in model.parameters()]
    for got, want in zip(seen[0]["params"], expected, strict=True):
        assert got == pytest.approx(want, rel=1e-5)
    for s in seen:  # the collectives agree on every rank
        assert s["every_rank_has"] is False and s["sum_across"] == [3.0] and s["mean_across"] == 0.5
        assert s["gather_all"] == [0, 1]


def _hashes(folder: Path) -> dict[int, list[tuple[int, str]]]:
    """rank -> [(step, parameter hash)] as the driver recorded them."""
    return {
        int(path.stem.removeprefix("rank")): [(r["step"], r["hash"]) for r in map(json.loads, path.open())]
        for path in sorted(folder.glob("rank*.jsonl"))
    }


@pytest.fixture(scope="module")
def two_rank_run(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("dp-run")
    _launch(tiny_model, root / "out", root / "hashes")
    return root / "out", root / "hashes"


def test_two_ranks_draw_disjoint_prompts_at_every_step(two_rank_run) -> None:
    out, _ = two_rank_run
    rows = [json.loads(line) for line in (out / "rollouts.jsonl").open()]
    for step in (1, 2):
        by_rank = [{r["task_id"] for r in rows if r["step"] == step and r["rank"] == rank} for rank in (0, 1)]
        assert all(len(ids) == 2 for ids in by_rank), by_rank  # B / G = 2 prompts each
        assert not by_rank[0] & by_rank[1], f"step {step}: both ranks drew {by_rank[0] & by_rank[1]}"
    assert len(rows) == 2 * 2 * 4  # steps x ranks x programs: every rank's rows, written once


def test_two_ranks_hold_identical_parameters_after_every_step_and_the_parameters_move(two_rank_run) -> None:
    _, hashes = two_rank_run
    per_rank = _hashes(hashes)
    assert sorted(per_rank) == [0, 1]
    assert per_rank[0] == per_rank[1]
    assert [step for step, _ in per_rank[0]] == [1, 2]
    assert per_rank[0][0][1] != per_rank[0][1][1]  # a step changed them


def test_two_ranks_write_one_metrics_log_one_tensorboard_one_checkpoint_and_the_model(two_rank_run) -> None:
    out, _ = two_rank_run
    rows = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    assert rows[-1]["eval/synth/pass@1"] is not None  # the sharded in-loop evaluation, gathered
    assert len(list((out / "tb").iterdir())) == 1  # one events file: rank 0's
    assert len(torch.load(out / "checkpoint" / "ranks.pt", weights_only=False)) == 2  # every rank's RNG states
    assert (out / "model.safetensors").is_file() and (out / "train_config.json").is_file()


def test_a_run_stopped_and_resumed_under_two_ranks_continues_identically(tiny_model, two_rank_run, tmp_path) -> None:
    """--stop-after 1, then --resume: the same parameters at step 2 on both ranks and the same metrics and
    rollouts as the uninterrupted run."""
    out, hashes = two_rank_run
    _launch(tiny_model, tmp_path / "out", tmp_path / "hashes", "--stop-after", "1")
    _launch(tiny_model, tmp_path / "out", tmp_path / "hashes", "--resume")
    assert _hashes(tmp_path / "hashes") == _hashes(hashes)

    def comparable(path: Path) -> list[dict]:
        return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in read_metrics(path)]

    assert comparable(tmp_path / "out" / "metrics.jsonl") == comparable(out / "metrics.jsonl")

    def sampled(path: Path) -> list[tuple]:
        return [(r["step"], r["rank"], r["task_id"], r["program"], r["reward"]) for r in map(json.loads, path.open())]

    assert sampled(tmp_path / "out" / "rollouts.jsonl") == sampled(out / "rollouts.jsonl")


@pytest.mark.parametrize(
    ("batch", "world"),
    [
        (list(range(8)), 1),  # one process: the batch itself
        (list(range(8)), 2),  # even split
        (list(range(5)), 2),  # a short last batch: the first row padded in
        ([7], 4),  # fewer rows than ranks: every rank still gets one
    ],
)
def test_a_supervised_batch_is_shared_between_ranks_with_no_rank_left_empty(batch: list[int], world: int) -> None:
    shares = [distributed.batch_share(batch, rank, world) for rank in range(world)]
    assert sorted(set(i for share in shares for i in share)) == sorted(batch)  # every row trained
    assert len({len(share) for share in shares}) == 1 and shares[0]  # equal, non-empty shares
    assert sum(map(len, shares)) - len(batch) < world  # padding only to the next multiple of world


CONFIGS = Path(distributed.__file__).with_name("accelerate")


@pytest.mark.parametrize(
    ("name", "kind", "stage"),
    [
        ("ddp", "MULTI_GPU", 0),  # DDP on the GPUs of one machine
        ("cpu", "MULTI_GPU", 0),  # two gloo processes without CUDA (what the tests above launch)
        ("zero2", "DEEPSPEED", 2),  # optimizer states and gradients sharded
        ("zero3", "DEEPSPEED", 3),  # parameters sharded too
    ],
)
def test_the_shipped_accelerate_configs_load_with_accelerates_own_parsers(name: str, kind: str, stage: int) -> None:
    """accelerate's config-file loader (what `accelerate launch --config_file` runs) and, for DeepSpeed, its
    DeepSpeedPlugin on the JSON the YAML names (DeepSpeed itself needs CUDA: not run here); the "auto" values
    accelerate leaves to a DataLoader are filled from the trainer's flags."""
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DeepSpeedPlugin

    config = load_config_from_file(str(CONFIGS / f"{name}.yaml"))
    assert config.distributed_type.value == kind
    if not stage:
        return
    json_file = Path(config.deepspeed_config["deepspeed_config_file"])
    assert json_file.parent == Path("trainers/accelerate")  # relative to the repository root
    plugin = DeepSpeedPlugin(hf_ds_config=str(CONFIGS / json_file.name))
    assert plugin.zero_stage == stage
    distributed.fill_auto(plugin.deepspeed_config, 0.5)
    assert plugin.deepspeed_config["train_micro_batch_size_per_gpu"] == 1
    assert plugin.deepspeed_config["gradient_clipping"] == 0.5
