"""Reward model: Bradley-Terry loss, pairs from execution, above-chance held-out accuracy, CLI runs and refuses."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from execrl.harness.cli import main as execrl  # noqa: E402
from execrl.harness.records import ExecResult, Verdict  # noqa: E402
from execrl.trainers.reward_model import (  # noqa: E402
    RewardModel,
    RMConfig,
    bt_loss,
    load_pairs,
    pairs_from_results,
    train_reward_model,
)
from execrl.trainers.tiny import build_tiny_model  # noqa: E402

from tests.evaluated_runs import write_humaneval_run  # noqa: E402

NAMES = ["x", "n", "val", "item", "num", "k"]


def separable_pairs(n: int) -> list[dict[str, str]]:
    """Chosen bodies return a value, rejected ones raise: separable by their first tokens."""
    pairs = []
    for i in range(n):
        arg = NAMES[i % len(NAMES)]
        pairs.append(
            {
                "prompt": f"# return {arg} plus {i}\ndef f{i}({arg}):\n",
                "chosen": f"    return {arg} + {i}\n",
                "rejected": f"    raise ValueError({i})\n",
            }
        )
    return pairs


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = [p["prompt"] + p["chosen"] + p["rejected"] for p in separable_pairs(40)]
    folder = tmp_path_factory.mktemp("tiny") / "model"
    return build_tiny_model(folder, corpus, vocab_size=300, n_layer=1, d_model=64, max_positions=64)


@pytest.fixture()
def pairs_file(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in separable_pairs(80)))
    return path


def test_bradley_terry_loss_matches_the_formula() -> None:
    r_chosen, r_rejected = torch.tensor([2.0, 0.0, -1.0]), torch.tensor([0.0, 0.0, 1.0])
    pairs = [(2.0, 0.0), (0.0, 0.0), (-1.0, 1.0)]
    expected = sum(-math.log(1 / (1 + math.exp(-(c - r)))) for c, r in pairs) / 3
    assert float(bt_loss(r_chosen, r_rejected)) == pytest.approx(expected, rel=1e-6)


def test_pairs_from_results_pair_a_passing_and_a_failing_program_of_the_same_task() -> None:
    samples = [
        {"task_id": "t/0", "completion": "good0"},
        {"task_id": "t/0", "completion": "bad0"},
        {"task_id": "t/0", "completion": "broken0"},
        {"task_id": "t/1", "completion": "good1"},  # t/1 has no failing sample: no pair
        {"task_id": "t/2", "completion": "bad2"},  # t/2 has no passing sample: no pair
        {"task_id": "t/2", "completion": "flaky2"},  # a sandbox error says nothing about the program
    ]
    verdicts = [Verdict.PASSED, Verdict.FAILED, Verdict.SYNTAX_ERROR, Verdict.PASSED, Verdict.FAILED]
    verdicts.append(Verdict.SANDBOX_ERROR)
    prompts = {"t/0": "P0", "t/1": "P1", "t/2": "P2"}
    pairs = pairs_from_results(samples, [ExecResult(v) for v in verdicts], prompts)
    assert sorted((p["prompt"], p["chosen"], p["rejected"]) for p in pairs) == [
        ("P0", "good0", "bad0"),
        ("P0", "good0", "broken0"),
    ]
    assert len(pairs_from_results(samples, [ExecResult(v) for v in verdicts], prompts, max_pairs_per_task=1)) == 1


@pytest.mark.slow
def test_held_out_pair_accuracy_is_clearly_above_chance(tiny: Path, pairs_file: Path, tmp_path: Path) -> None:
    cfg = RMConfig(model=str(tiny), out=tmp_path / "rm", pairs=str(pairs_file), eval_share=0.25, epochs=4, lr=2e-3)
    out = train_reward_model(cfg)
    metrics = json.loads((out / "rm_metrics.json").read_text())
    assert metrics["n_eval"] == 20
    assert metrics["rm/eval_accuracy"] >= 0.8
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert sum(r["rm/loss"] for r in log[-3:]) < sum(r["rm/loss"] for r in log[:3])
    held = separable_pairs(90)[80:]  # unseen functions
    texts = [p["chosen"] for p in held] + [p["rejected"] for p in held]
    scores = RewardModel.load(out).score([p["prompt"] for p in held] * 2, texts)
    assert scores.shape == (20,)
    assert (scores[:10] > scores[10:]).mean() >= 0.8


def test_cli_trains_a_reward_model_folder(tiny: Path, pairs_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "rm"
    argv = ["train", "rm", "--model", str(tiny), "--pairs", str(pairs_file), "--out", str(out), "--max-steps", "2"]
    assert execrl(argv) == 0
    assert {"config.json", "train_config.json", "rm_metrics.json", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    assert execrl(argv) == 0  # a finished run is reused


@pytest.mark.parametrize(
    ("pairs", "needle"),
    [
        ("missing.jsonl", "missing.jsonl: no such file"),  # a wrong path is named
        ('{"prompt": "p", "chosen": "c"}\n', ":1: missing string field(s) rejected"),  # incomplete pair row
        ('{"prompt": "p", "chosen": "c", "rejected": "r"}\n', "need at least 2 pairs"),  # nothing to hold out
    ],
    ids=["missing-file", "missing-field", "too-few-pairs"],
)
def test_cli_refuses_bad_pairs_with_a_clear_message(
    pairs: str, needle: str, tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / pairs if pairs.endswith(".jsonl") else tmp_path / "pairs.jsonl"
    if not pairs.endswith(".jsonl"):
        path.write_text(pairs)
    assert execrl(["train", "rm", "--model", str(tiny), "--pairs", str(path), "--out", str(tmp_path / "rm")]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_cli_trains_on_pairs_from_run_folders_mixed_with_a_file_and_prints_the_counts(
    tiny: Path, pairs_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = write_humaneval_run(
        tmp_path / "run",
        {"HumanEval/0": ["passed", "failed", "runtime_error"], "HumanEval/1": ["passed", "passed"]},  # 2 pairs
    )
    out = tmp_path / "rm"
    argv = [
        "train",
        "rm",
        "--model",
        str(tiny),
        "--pairs-from-runs",
        str(run),
        "--max-steps",
        "1",
        "--max-length",
        "64",
    ]
    assert execrl([*argv, "--out", str(out)]) == 0
    assert f"pairs from {run}: 2 (passing, failing) pairs from 5 samples of 2 tasks" in capsys.readouterr().err
    metrics = json.loads((out / "rm_metrics.json").read_text())
    assert metrics["n_train"] + metrics["n_eval"] == 2
    assert execrl([*argv, "--pairs", str(pairs_file), "--out", str(tmp_path / "mixed")]) == 0
    metrics = json.loads((tmp_path / "mixed" / "rm_metrics.json").read_text())
    assert metrics["n_train"] + metrics["n_eval"] == 80 + 2


def test_exported_rows_without_a_preference_are_left_out(tmp_path: Path) -> None:
    rows = [
        {"prompt": "p", "chosen": "c", "rejected": "r", "label": label} for label in ("preference", "tie", "both_bad")
    ]
    path = tmp_path / "prefs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = RMConfig(model="unused", out=tmp_path / "rm", pairs=str(path))
    assert [r["label"] for r in load_pairs(cfg)] == ["preference"]


def test_pairs_from_runs_refuses_a_folder_that_is_not_an_evaluated_run(tiny: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    argv = [
        "train",
        "rm",
        "--model",
        str(tiny),
        "--pairs-from-runs",
        str(tmp_path / "empty"),
        "--out",
        str(tmp_path / "rm"),
    ]
    assert execrl(argv) == 2
    assert "no results.jsonl" in capsys.readouterr().err
