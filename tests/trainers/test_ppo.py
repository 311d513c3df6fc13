"""PPO end to end on a tiny model: parameters move, metrics are logged by name, reward rises, resume is exact."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from execrl.benchmarks.synth import load_synth, sft_corpus
from execrl.trainers.data import write_jsonl
from execrl.trainers.ppo import train_ppo
from execrl.trainers.ppo_config import PPOConfig
from execrl.trainers.tracking import read_metrics

from tests.commands import command

main = command("train", "ppo")

FAMILY = "clamp"  # an easy synth family: `return max(lo, min(x, hi))`, its bug `hi - 1`
METRIC_NAMES = (
    "ppo/policy_loss",
    "ppo/value_loss",
    "ppo/entropy",
    "ppo/kl",
    "ppo/clipfrac",
    "ppo/ratio_mean",
    "ppo/ratio_std",
    "ppo/explained_variance",
    "ppo/mean_reward",
    "ppo/reward_std",
    "ppo/mean_advantage",
    "code/syntax_rate",
    "code/pass_rate",
    "code/sandbox_error_rate",
    "code/quality_score",
    "code/hack_attempt_rate",
    "code/hack/opaque_answer",
    "time/rollout",
    "time/sandbox",
    "time/sandbox_wait",
    "time/update",
    "time/total",
)


def _build_sft_model(root: Path) -> Path:
    """The pipeline's tiny model size, SFT'd on the easy family with half the solutions wrong (30-45 s on 1 core).

    It copies the constants well enough to pass about 40% of fresh samples at temperature 1: clearly above
    zero, with room for PPO to unlearn the `hi - 1` bug.
    """
    from execrl.trainers.sft import SFTConfig, train_sft
    from execrl.trainers.tiny import build_tiny_model

    problems = [p for p in load_synth("train") if p.metadata["family"] == FAMILY]
    rows = sft_corpus(problems, wrong_share=0.5, seed=0)
    write_jsonl(root / "sft.jsonl", [{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    build_tiny_model(
        root / "model0",
        [r["prompt"] + r["completion"] for r in rows],
        vocab_size=300,
        n_layer=2,
        d_model=128,
        n_head=4,
        max_positions=128,
    )
    return train_sft(
        SFTConfig(
            model=str(root / "model0"),
            out=root / "sft",
            data=str(root / "sft.jsonl"),
            max_steps=500,
            batch_size=16,
            lr=3e-3,
            device="cpu",
            max_length=128,
        )
    )


@pytest.fixture(scope="session")
def sft_model(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """One SFT'd tiny model per test session, shared by the xdist workers (built once, under a file lock)."""
    if worker_id == "master":  # not distributed: the session's own temp folder
        return _build_sft_model(tmp_path_factory.mktemp("ppo-sft"))
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp().parent / "ppo-sft"  # shared by this session's workers only
    with FileLock(f"{root}.lock"):
        if not (root / "built").is_file():
            root.mkdir(exist_ok=True)
            _build_sft_model(root)
            (root / "built").touch()
    return root / "sft"


def _cfg(model: Path, out: Path, **overrides) -> PPOConfig:
    base = dict(
        preset="cpu-tiny",
        families=FAMILY,
        batch_size=32,
        minibatch_size=16,
        max_new_tokens=32,
        max_prompt_tokens=64,
        eval_every=0,
        workers=1,
        device="cpu",
    )
    from execrl.trainers.ppo_config import PRESETS

    return PPOConfig(model=str(model), out=out, **{**PRESETS["cpu-tiny"], **base, **overrides})


def _pass_count(model_dir: Path, n_per_problem: int, seed: int) -> tuple[int, int]:
    """Passed programs among fresh samples (temperature 1) on 40 held-out problems of the family."""
    from execrl.benchmarks.synth import synth_program
    from execrl.harness.sandbox.pool import execute_many
    from execrl.trainers.rollout import sample
    from transformers import AutoModelForCausalLM, AutoTokenizer

    problems = [p for p in load_synth("test", n=40 * 11) if p.metadata["family"] == FAMILY]
    lm, tokenizer = AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)
    torch.manual_seed(seed)
    rollout = sample(
        lm,
        tokenizer,
        [p.prompt for p in problems],
        [p.metadata["stop"] for p in problems],
        samples_per_prompt=n_per_problem,
        max_new_tokens=32,
        temperature=1.0,
        max_prompt_tokens=64,
    )
    repeated = [p for p in problems for _ in range(n_per_problem)]
    results = execute_many(
        repeated, [synth_program(p, t) for p, t in zip(repeated, rollout.texts, strict=True)], workers=1
    )
    return sum(r.passed for r in results), len(results)


@pytest.mark.slow
def test_tiny_ppo_run_changes_parameters_logs_every_metric_and_raises_the_pass_rate(sft_model, tmp_path) -> None:
    out = train_ppo(_cfg(sft_model, tmp_path / "ppo", iterations=15, eval_every=15, eval_problems=10))
    rows = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(1, 16))
    for row in rows:
        assert set(METRIC_NAMES) <= set(row), set(METRIC_NAMES) - set(row)
    assert "eval/synth/pass@1" in rows[-1]
    assert (out / "tb").is_dir() and (out / "train_config.json").is_file()

    from safetensors.torch import load_file

    before, after = load_file(sft_model / "model.safetensors"), load_file(out / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before)

    # One-sided two-proportion z-test on pooled fresh samples: after > before at p < 0.01.
    # 320 samples each; the SFT model must leave room to improve, else the test would prove nothing.
    passed_0, n_0 = _pass_count(sft_model, 8, seed=123)
    passed_1, n_1 = _pass_count(out, 8, seed=123)
    assert 0.1 < passed_0 / n_0 < 0.8, (passed_0, n_0)
    assert passed_1 > passed_0, (passed_0, n_0, passed_1, n_1)
    p_pool = (passed_0 + passed_1) / (n_0 + n_1)
    z = (passed_1 / n_1 - passed_0 / n_0) / math.sqrt(p_pool * (1 - p_pool) * (1 / n_0 + 1 / n_1))
    p_value = 0.5 * math.erfc(z / math.sqrt(2))
    assert p_value < 0.01, (passed_0, n_0, passed_1, n_1, p_value)


@pytest.mark.slow
def test_resume_after_k_iterations_reproduces_the_uninterrupted_metrics_curve(sft_model, tmp_path) -> None:
    settings = dict(iterations=4, save_every=2, batch_size=16, minibatch_size=8, log_rollouts=True)
    whole = train_ppo(_cfg(sft_model, tmp_path / "whole", **settings))
    train_ppo(_cfg(sft_model, tmp_path / "split", stop_after=2, **settings))
    assert not (tmp_path / "split" / "train_config.json").exists()
    with open(tmp_path / "split" / "rollouts.jsonl", "a") as f:  # as if killed after step 3 sampled, unsaved
        f.write(json.dumps({"step": 3, "task_id": "x", "program": "", "reward": 0.0, "verdict": "failed"}) + "\n")
    split = train_ppo(_cfg(sft_model, tmp_path / "split", resume=True, **settings))

    def curve(folder: Path) -> list[dict]:
        rows = read_metrics(folder / "metrics.jsonl")
        return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in rows]

    assert len(curve(whole)) == 4
    assert curve(split) == curve(whole)

    def rollouts(folder: Path) -> list[tuple]:  # the rows of steps redone after the checkpoint are not repeated
        rows = [json.loads(line) for line in (folder / "rollouts.jsonl").read_text().splitlines()]
        return [(r["step"], r["task_id"], r["program"], r["reward"], r["verdict"]) for r in rows]

    assert len(rollouts(whole)) == 4 * 16 and rollouts(split) == rollouts(whole)


def test_a_non_empty_output_folder_is_refused_naming_resume_and_force(tmp_path, capsys) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    assert main(["--model", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "--force" in err


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--reward", "nope"], "--reward"),
        (["--kl-estimator", "k9"], "--kl-estimator"),
        (["--preset", "gpu-huge"], "--preset"),
        (["--batch-size", "2", "--samples-per-prompt", "4"], "--batch-size"),
        (["--advantage", "ppo"], "--advantage"),
        (["--advantage", "grpo", "--samples-per-prompt", "1", "--batch-size", "4"], "--samples-per-prompt"),
        (["--dynamic-sampling", "--samples-per-prompt", "1", "--batch-size", "4"], "--dynamic-sampling"),
        (["--max-refill-rounds", "-1"], "--max-refill-rounds"),
        (["--loss-agg", "sum"], "--loss-agg"),
        (["--kl-penalty", "both"], "--kl-penalty"),
        (["--max-hack-rate", "1.5"], "--max-hack-rate"),
        (["--overlap-scoring", "--overlap-chunks", "0"], "--overlap-chunks"),
    ],
    ids=[
        "unknown-reward",
        "unknown-kl-estimator",
        "unknown-preset",
        "batch-smaller-than-group",
        "unknown-advantage",
        "group-estimator-with-one-sample-per-prompt",
        "dynamic-sampling-with-one-sample-per-prompt",
        "negative-refill-rounds",
        "unknown-loss-aggregation",
        "unknown-kl-placement",
        "hack-rate-above-1",
        "no-overlap-chunks",
    ],
)
def test_bad_flag_values_exit_2_naming_the_flag(tmp_path, capsys, flags, named) -> None:
    assert main(["--model", str(tmp_path), "--out", str(tmp_path / "o"), *flags]) == 2
    assert named in capsys.readouterr().err


def test_every_reward_function_is_a_reward_choice() -> None:
    from typing import get_args

    from execrl.trainers.ppo_config import RewardName
    from execrl.trainers.rewards import REWARDS

    assert set(get_args(RewardName)) == set(REWARDS)


def test_help_lists_the_preset_values(capsys) -> None:
    assert main(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "cpu-tiny: iterations=80, batch_size=128" in out and "{coderl,partial,weighted,binary}" in out


def test_preset_values_are_defaults_that_explicit_flags_override() -> None:
    from execrl.trainers.ppo_config import PRESETS, parse_config

    cfg = parse_config(["--model", "m", "--out", "o", "--preset", "cpu-tiny", "--lr", "0.5"])
    assert cfg.lr == 0.5
    assert cfg.batch_size == PRESETS["cpu-tiny"]["batch_size"] != PPOConfig(model="m", out=Path("o")).batch_size


def test_logged_config_is_the_full_run_config(sft_model, tmp_path) -> None:
    out = train_ppo(_cfg(sft_model, tmp_path / "p", iterations=1, batch_size=8, minibatch_size=8))
    logged = json.loads((out / "ppo_config.json").read_text())
    assert logged["families"] == FAMILY and logged["iterations"] == 1 and "lr" in logged


def test_a_batch_of_only_sandbox_errors_allowed_by_the_limit_updates_nothing_and_logs_the_iteration(
    tmp_path, monkeypatch
) -> None:
    """--max-sandbox-errors 1 lets a batch through in which no sample has a reward: no minibatch, no step."""
    from execrl.harness.records import ExecResult, Verdict
    from execrl.trainers.ppo_setup import Run
    from execrl.trainers.tiny import build_tiny_model

    rows = sft_corpus([p for p in load_synth("train") if p.metadata["family"] == FAMILY], wrong_share=0.0)
    model = build_tiny_model(tmp_path / "m0", [r["prompt"] + r["completion"] for r in rows], vocab_size=300,
                             n_layer=1, d_model=32, n_head=2, max_positions=128)  # fmt: skip
    monkeypatch.setattr(
        Run, "execute", lambda self, problems, programs: [ExecResult(Verdict.SANDBOX_ERROR, error="x")] * len(programs)
    )
    cfg = _cfg(model, tmp_path / "ppo", iterations=2, batch_size=8, minibatch_size=4, max_new_tokens=8,
               max_sandbox_errors=1.0, adaptive_kl=True)  # fmt: skip
    out = train_ppo(cfg)

    rows = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    assert all(r["ppo/minibatch_steps"] == 0 and r["ppo/mean_reward"] is None for r in rows), "NaN is logged as null"
    assert all(r["ppo/kl_coef"] == cfg.kl_coef for r in rows), "no KL was measured, so beta must not move"
    from safetensors.torch import load_file

    before, after = load_file(model / "model.safetensors"), load_file(out / "model.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before)


ALWAYS_EQUAL = (
    "class A:\n    __eq__ = lambda s, o: True\n    __hash__ = lambda s: 0\ndef {name}(*a, **k):\n    return A()\n"
)
"""The always-true `__eq__` hack (arXiv 2511.17387), as a program defining the problem's function."""


def test_a_planted_policy_that_starts_cheating_stops_the_run_at_max_hack_rate_and_keeps_the_checkpoint(
    tmp_path, monkeypatch, capsys
) -> None:
    """A stub rollout: the tiny policy's samples are replaced, from the second iteration on, by an always-true
    `__eq__` program, run through the real sandbox. The stop comes after that iteration is logged (the curve shows
    the jump), exit 1 with the reason, and the checkpoint of iteration 1 stays for --resume."""
    from execrl.trainers.ppo_setup import Run
    from execrl.trainers.tiny import build_tiny_model

    rows = sft_corpus([p for p in load_synth("train") if p.metadata["family"] == FAMILY], wrong_share=0.0)
    model = build_tiny_model(tmp_path / "m0", [r["prompt"] + r["completion"] for r in rows], vocab_size=300,
                             n_layer=1, d_model=32, n_head=2, max_positions=128)  # fmt: skip
    honest = Run.to_program

    def planted(self, problem, text):
        if self.step == 0:
            return honest(self, problem, text)
        return ALWAYS_EQUAL.format(name=problem.fn_name)

    monkeypatch.setattr(Run, "to_program", planted)
    out = tmp_path / "ppo"
    flags = ["--model", str(model), "--out", str(out), "--preset", "cpu-tiny", "--families", FAMILY,
             "--iterations", "4", "--save-every", "1", "--batch-size", "8", "--minibatch-size", "4",
             "--max-new-tokens", "8", "--max-prompt-tokens", "64", "--eval-every", "0", "--workers", "1",
             "--device", "cpu", "--max-hack-rate", "0.5"]  # fmt: skip
    assert main(flags) == 1
    assert "tried to cheat" in capsys.readouterr().err
    rows = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    assert rows[0]["code/hack_attempt_rate"] == 0.0
    assert rows[1]["code/hack_attempt_rate"] == 1.0 and rows[1]["code/hack/opaque_answer"] == 1.0
    assert rows[1]["code/hack/network"] == 0.0
    assert not (out / "train_config.json").exists(), "a stopped run is not finished"
    state = torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=False)
    assert state["step"] == 1, "the checkpoint is the last one before the stop"


# --- critic-free estimators and dynamic sampling ---


def test_a_critic_free_run_builds_trains_and_saves_no_value_head_and_resumes_exactly(sft_model, tmp_path) -> None:
    settings = dict(advantage="grpo", iterations=2, save_every=1, batch_size=8, minibatch_size=8)
    whole = train_ppo(_cfg(sft_model, tmp_path / "whole", **settings))
    split = tmp_path / "split"
    train_ppo(_cfg(sft_model, split, stop_after=1, **settings))
    assert (split / "checkpoint" / "trainer_state.pt").is_file() and not (split / "train_config.json").exists()
    assert not list(split.rglob("value_head.pt")), "a checkpoint of a critic-free run holds no value head"
    train_ppo(_cfg(sft_model, split, resume=True, **settings))
    assert (split / "train_config.json").is_file() and not list(split.rglob("value_head.pt"))

    def curve(folder: Path) -> list[dict]:
        return [
            {k: v for k, v in r.items() if not k.startswith("time/")} for r in read_metrics(folder / "metrics.jsonl")
        ]

    rows = curve(whole)
    assert [r["step"] for r in rows] == [1, 2] and curve(split) == rows
    for row in rows:
        assert "ppo/value_loss" not in row and "ppo/explained_variance" not in row, "no value head: left out"
        assert {"ppo/policy_loss", "ppo/kl_loss", "ppo/zero_adv_share", "code/pass_rate"} <= set(row)
        assert "ppo/refill_rounds" not in row, "dynamic sampling is off"
    from safetensors.torch import load_file

    before, after = load_file(sft_model / "model.safetensors"), load_file(whole / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before)


def _rewards_with_flat_groups(flat_groups: int):
    """A score function (Run.score's signature) giving the first `flat_groups` prompt groups of every draw the same
    reward for all G samples, and the others 1.0 for their first sample and 0.0 for the rest (rewards that differ).
    The sandbox still runs; only the reward is fixed, so which groups dynamic sampling drops is known."""

    def score(run, problems, programs, results):
        group = run.cfg.samples_per_prompt
        return [0.0 if i // group < flat_groups else float(i % group == 0) for i in range(len(problems))]

    return score


@pytest.mark.parametrize("overlap", [False, True], ids=["sequential-scoring", "overlapped-scoring"])
def test_dynamic_sampling_drops_all_equal_groups_and_refills_the_batch_with_unseen_prompts(
    sft_model, tmp_path, monkeypatch, overlap
) -> None:
    from execrl.trainers.ppo import collect
    from execrl.trainers.ppo_config import run_config
    from execrl.trainers.ppo_setup import Run, prepare_out, setup_run

    monkeypatch.setattr(Run, "score", _rewards_with_flat_groups(2))
    cfg = _cfg(sft_model, tmp_path / "ds", dynamic_sampling=True, advantage="rloo", batch_size=16,
               overlap_scoring=overlap, overlap_chunks=3)  # fmt: skip
    prepare_out(cfg.out, run_config(cfg), resume=False, force=False)
    with setup_run(cfg, cfg.out, run_config(cfg), resume=False) as run:
        batch, first, metrics = collect(cfg, run)
        # 4 groups drawn, 2 of them flat: keep rate 1/2, so the refill draws 4 more prompts and keeps 2 of them.
        assert metrics == {
            "ppo/zero_adv_share": 0.5,
            "ppo/refill_rounds": 1,
            "ppo/kept_groups": 4,
            "ppo/drawn_groups": 8,
        }
        assert first.scores == [0.0] * 8 + [1.0, 0.0, 0.0, 0.0] * 2
        assert batch.scores == [1.0, 0.0, 0.0, 0.0] * 4, "only groups whose rewards differ are learned from"
        kept_ids = [p.task_id for p in batch.problems[::4]]
        assert kept_ids[:2] == [p.task_id for p in first.problems[8::4]] and len(set(kept_ids)) == 4
        assert batch.rollout.response_ids.shape[0] == len(batch.programs) == 16
        for problem, text, program in zip(batch.problems, batch.rollout.texts, batch.programs, strict=True):
            assert run.to_program(problem, text) == program, "rows of the joined rollout stay with their programs"
        again = run.execute(batch.problems, batch.programs)
        assert [r.verdict for r in again] == [r.verdict for r in batch.results], "results stay with their programs"


def test_dynamic_sampling_stops_after_max_refill_rounds_and_trains_nothing_when_every_group_is_flat(
    sft_model, tmp_path, monkeypatch
) -> None:
    from execrl.trainers.ppo_setup import Run

    monkeypatch.setattr(Run, "score", _rewards_with_flat_groups(10**6))
    cfg = _cfg(sft_model, tmp_path / "ds", iterations=1, dynamic_sampling=True, max_refill_rounds=2,
               advantage="rloo", batch_size=8, minibatch_size=8)  # fmt: skip
    out = train_ppo(cfg)
    (row,) = read_metrics(out / "metrics.jsonl")
    assert row["ppo/zero_adv_share"] == 1.0 and row["ppo/refill_rounds"] == 2 and row["ppo/kept_groups"] == 0
    assert row["ppo/drawn_groups"] == 6 and row["ppo/minibatch_steps"] == 0
    assert "ppo/kl_loss" not in row, "rloo keeps the KL penalty in the reward"
    from safetensors.torch import load_file

    before, after = load_file(sft_model / "model.safetensors"), load_file(out / "model.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize(
    ("advantage", "kl_penalty", "loss_agg", "value_head", "kl_in_loss", "agg"),
    [
        ("gae", "auto", "auto", True, False, "token_mean"),  # today's PPO, unchanged
        ("grpo", "auto", "auto", False, True, "token_mean"),  # GRPO eq. 3 / veRL use_kl_loss; DAPO's token mean
        ("dr_grpo", "auto", "auto", False, True, "seq_mean_token_sum_norm"),  # Dr. GRPO: no length normalisation
        ("rloo", "auto", "auto", False, False, "token_mean"),  # Ahmadian et al.: KL in the sequence reward
        ("reinforce_pp", "auto", "auto", False, False, "token_mean"),  # Hu 2025: KL in the per-token reward
        ("grpo", "reward", "seq_mean_token_mean", False, False, "seq_mean_token_mean"),  # explicit flags win
        ("gae", "loss", "seq_mean_token_sum", True, True, "seq_mean_token_sum"),
    ],
    ids=["gae", "grpo", "dr-grpo", "rloo", "reinforce-pp", "grpo-explicit", "gae-explicit"],
)
def test_each_estimator_gets_its_papers_kl_placement_and_loss_aggregation_unless_told(
    advantage, kl_penalty, loss_agg, value_head, kl_in_loss, agg
) -> None:
    cfg = PPOConfig(model="m", out=Path("o"), advantage=advantage, kl_penalty=kl_penalty, loss_agg=loss_agg)
    assert (cfg.value_head, cfg.kl_in_loss, cfg.loss_agg_mode) == (value_head, kl_in_loss, agg)


def test_help_documents_the_estimator_and_dynamic_sampling_flags(capsys) -> None:
    assert main(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in (
        "--advantage {gae,grpo,dr_grpo,rloo,reinforce_pp}",
        "--loss-agg {auto,token_mean,seq_mean_token_mean,seq_mean_token_sum,",  # the help wraps the choices here
        "seq_mean_token_sum_norm}",
        "--kl-penalty {auto,reward,loss}",
        "--dynamic-sampling",
        "--max-refill-rounds INT",
        "Shao et al. 2024",
        "DAPO, Yu et al. 2025",
    ):
        assert text in out, text
