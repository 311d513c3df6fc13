"""Training problem sources: train splits, the refusal to train on held-out problems, SFT rows from references."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from execrl.benchmarks.errors import UserError
from execrl.benchmarks.registry import load_problems
from execrl.trainers.flags import TrainProblemFlags
from execrl.trainers.sources import (
    check_overlap,
    held_out_problems,
    overlapping,
    reference_rows,
    training_problems,
)

from tests.commands import command

ppo = command("train", "ppo")


def test_trainers_default_to_the_train_split_and_read_several_benchmarks_in_order(shared_data_dir) -> None:
    flags = TrainProblemFlags(benchmark=["mbpp", "apps"], difficulty="introductory", data_dir=shared_data_dir)
    problems = training_problems(flags)
    mbpp = [p for p in problems if p.benchmark == "mbpp"]
    apps = [p for p in problems if p.benchmark == "apps"]
    assert problems == mbpp + apps, "sources keep their order"
    assert len(mbpp) == 374 and mbpp[0].task_id == "Mbpp/601", "MBPP train is task ids 601-974"
    assert len(apps) == 51 and {p.difficulty for p in apps} == {"introductory"}, "--difficulty goes to APPS only"
    held = held_out_problems(TrainProblemFlags(benchmark=["mbpp"], limit=5, data_dir=shared_data_dir))
    assert list(held) == ["mbpp"] and len(held["mbpp"]) == 500, "the test split, whole: --limit cuts training only"


def test_synth_stays_the_default_source_with_its_own_seed() -> None:
    from execrl.benchmarks.synth import load_synth

    assert training_problems(TrainProblemFlags(), synth_seed=3) == load_synth("train", seed=3)


def test_training_on_the_evaluated_split_is_refused_naming_the_overlapping_task_ids(shared_data_dir) -> None:
    train = load_problems("mbpp", "test", shared_data_dir, limit=20)
    held = load_problems("mbpp", "test", shared_data_dir)
    with pytest.raises(UserError, match=r"20 training problem\(s\) are also in the MBPP eval: Mbpp/11, Mbpp/12,") as e:
        check_overlap(train, held, "the MBPP eval")
    assert "and 12 more" in str(e.value) and "--allow-eval-overlap" in str(e.value)
    check_overlap(load_problems("mbpp", "train", shared_data_dir), held, "the MBPP eval")  # disjoint: passes


def test_problems_are_the_same_by_their_tests_not_their_task_ids(shared_data_dir) -> None:
    from dataclasses import replace

    mbpp = load_problems("mbpp", "test", shared_data_dir, limit=3)
    renamed = [replace(p, task_id=f"mine/{i}", benchmark="problems") for i, p in enumerate(mbpp)]
    assert overlapping(renamed, mbpp) == [("mine/0", "Mbpp/11"), ("mine/1", "Mbpp/12"), ("mine/2", "Mbpp/13")]
    # APPS numbers both splits from 0: an id in common is not a problem in common.
    apps = load_problems("apps", "train", shared_data_dir, limit=3)
    other = [replace(p, prompt=p.prompt + " (another problem)") for p in apps]
    assert overlapping(other, apps) == []


def test_ppo_on_mbpp_test_is_refused_before_its_output_folder_is_claimed(shared_data_dir, tmp_path, capsys) -> None:
    out = tmp_path / "ppo"
    argv = ["--model", str(tmp_path), "--out", str(out), "--benchmark", "mbpp", "--split", "test"]
    assert ppo([*argv, "--data-dir", str(shared_data_dir), "--eval-problems", "500"]) == 2
    err = capsys.readouterr().err
    assert "training problem(s) are also in the in-loop evaluation's mbpp test split: Mbpp/11, Mbpp/12" in err
    assert not out.exists(), "a refused source must not leave a stamped folder behind"


def test_humaneval_is_refused_as_a_training_set_unless_overlap_is_allowed(capsys, tmp_path) -> None:
    assert ppo(["--model", str(tmp_path), "--out", str(tmp_path / "o"), "--benchmark", "humaneval"]) == 2
    assert "HumanEval has only its test split" in capsys.readouterr().err
    allowed = training_problems(TrainProblemFlags(benchmark=["humaneval"], allow_eval_overlap=True))
    assert len(allowed) == 164


def test_sft_rows_are_the_reference_solutions_after_the_prompt_the_model_sees(shared_data_dir, tmp_path) -> None:
    from execrl.benchmarks.problem_file import load_problem_file
    from execrl.benchmarks.prompts import build_prompt

    mbpp = load_problems("mbpp", "train", shared_data_dir, limit=2)
    rows = reference_rows(mbpp, 1)
    assert [r["prompt"] for r in rows] == [build_prompt(p) for p in mbpp]
    assert "\r" not in rows[0]["completion"] and rows[0]["completion"].endswith("\n")
    apps = load_problems("apps", "train", shared_data_dir, difficulty="introductory", limit=2)
    assert len(reference_rows(apps, 3)) == sum(min(3, len(p.solutions)) for p in apps), "APPS: several each"
    body = {"task_id": "b", "prompt": "def f(x):\n", "completion": "body", "tests": ["assert f(1) == 2"]}
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({**body, "solutions": ["def f(x):\n    return x + 1\n"]}) + "\n")
    expected = [{"prompt": "def f(x):\n", "completion": "    return x + 1\n"}]  # the body after the prompt
    assert reference_rows(load_problem_file(path), 1) == expected


def test_sft_takes_a_benchmarks_reference_solutions_or_rows_but_not_both(shared_data_dir, tmp_path: Path) -> None:
    from execrl.trainers.sft import SFTConfig, load_rows

    cfg = SFTConfig(model="m", out=tmp_path, benchmark=["mbpp"], split="train", limit=3, data_dir=shared_data_dir)
    rows = load_rows(cfg)
    assert len(rows) == 3 and rows[0]["completion"].startswith("class Pair")  # Mbpp/601's reference
    with pytest.raises(UserError, match="not both"):
        load_rows(SFTConfig(model="m", out=tmp_path / "x", benchmark=["mbpp"], data="rows.jsonl"))
