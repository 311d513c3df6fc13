"""`execrl generate` end to end on synth with the tiny model: output files, resume, refusals, flag errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from execrl.benchmarks.registry import load_problems  # noqa: E402
from execrl.benchmarks.synth import load_synth, sft_corpus, synth_program  # noqa: E402
from execrl.trainers.tiny import build_tiny_model  # noqa: E402

from tests.commands import command  # noqa: E402

main = command("generate")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = sft_corpus(load_synth("train")[:60], 0.3, 0)
    return build_tiny_model(tmp_path_factory.mktemp("cli") / "model", [r["prompt"] + r["completion"] for r in rows])


def _run(model_dir: Path, out: Path, *extra: str, limit: int = 3, n: int = 2) -> int:
    argv = ["--model", str(model_dir), "--benchmark", "synth", "--limit", str(limit), "--n", str(n)]
    return main([*argv, "--max-new-tokens", "12", "--out", str(out), *extra])


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_synth_run_writes_one_valid_row_per_problem_and_completion_id(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert _run(model_dir, out) == 0
    problems = {p.task_id: p for p in load_problems("synth", limit=3)}
    rows = _rows(out)
    assert sorted((r["task_id"], r["completion_id"]) for r in rows) == sorted(
        (task_id, c) for task_id in problems for c in range(2)
    )
    for row in rows:
        assert row["solution"] == synth_program(problems[row["task_id"]], row["raw"])
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == str(model_dir) and config["n"] == 2 and config["date"]
    assert config["temperature"] == 0.2 and config["top_p"] == 0.95


@pytest.mark.slow
def test_resume_generates_only_missing_rows_and_keeps_written_ones(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert _run(model_dir, out) == 0
    lines = (out / "samples.jsonl").read_text().splitlines(keepends=True)
    kept = "".join(lines[:3])
    # A killed run: three complete rows and a torn fourth.
    (out / "samples.jsonl").write_text(kept + lines[3][:10])
    capsys.readouterr()
    assert _run(model_dir, out) == 0
    assert "wrote 3 samples" in capsys.readouterr().err
    text = (out / "samples.jsonl").read_text()
    assert text.startswith(kept)
    # The redone rows are the very samples the uninterrupted run wrote (same batches, same seeds).
    assert sorted(text.splitlines()) == sorted(line.rstrip("\n") for line in lines)
    assert sorted((r["task_id"], r["completion_id"]) for r in _rows(out)) == sorted(
        (json.loads(line)["task_id"], json.loads(line)["completion_id"]) for line in lines
    )
    # Complete: nothing to do. A larger --limit adds only the new problem's rows.
    assert _run(model_dir, out) == 0
    assert "wrote 0 samples" in capsys.readouterr().err
    assert _run(model_dir, out, limit=4) == 0
    assert "wrote 2 samples" in capsys.readouterr().err
    assert len(_rows(out)) == 8


@pytest.mark.slow
def test_changed_config_is_refused_until_force(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert _run(model_dir, out, limit=1, n=1) == 0
    before = (out / "samples.jsonl").read_text()
    assert _run(model_dir, out, "--temperature", "0.7", limit=1, n=1) == 2
    err = capsys.readouterr().err
    assert "--force" in err and "temperature" in err
    assert (out / "samples.jsonl").read_text() == before
    assert _run(model_dir, out, "--temperature", "0.7", "--force", limit=1, n=1) == 0
    assert json.loads((out / "config.json").read_text())["temperature"] == 0.7
    assert len(_rows(out)) == 1


def test_bad_line_in_the_middle_of_samples_names_the_line(model_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert _run(model_dir, out, limit=1, n=1) == 0
    path = out / "samples.jsonl"
    path.write_text("not json\n" + path.read_text())
    assert _run(model_dir, out, limit=1, n=1) == 2
    assert f"{path}:1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("n", "expected"),
    [(1, 0.2), (5, 0.2), (6, 0.8), (100, 0.8)],
    ids=["n1-pass@1", "n5-still-pass@1-regime", "n6-pass@k-regime", "n100-pass@100"],
)
def test_default_temperature_follows_n_as_in_chen_et_al(tmp_path: Path, n: int, expected: float) -> None:
    out = tmp_path / "run"
    # --limit 0: no problems, so no model is needed and only config.json is written.
    assert _run(tmp_path / "no-model", out, limit=0, n=n) == 0
    assert json.loads((out / "config.json").read_text())["temperature"] == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--n", "0"], "--n"),
        (["--top-p", "1.5"], "--top-p"),
        (["--temperature", "-1"], "--temperature"),
        (["--max-new-tokens", "0"], "--max-new-tokens"),
        (["--engine", "openai"], "--base-url"),
        (["--benchmark", "nope"], "'--benchmark'"),
        (["--model", "/no/such/model"], "/no/such/model"),
        (["--precision", "float33"], "--precision"),
        (["--dtype", "bfloat16"], "--dtype was renamed: use --precision"),
        (["--backend=openai"], "--backend was renamed: use --engine"),
    ],
    ids=[
        "zero-samples",
        "top-p-above-one",
        "negative-temperature",
        "no-tokens",
        "openai-engine-needs-a-url",
        "unknown-benchmark",
        "missing-model-folder",
        "unknown-precision",
        "old-dtype-flag-names-its-new-name",
        "old-backend-flag-names-its-new-name",
    ],
)
def test_user_errors_exit_2_with_a_message_naming_the_cause(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    argv = [
        "--model",
        str(model_dir),
        "--benchmark",
        "synth",
        "--n",
        "1",
        "--limit",
        "1",
        "--out",
        str(tmp_path / "r"),
    ]
    assert main(argv + args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_vllm_engine_without_vllm_says_how_to_get_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--model", "m", "--benchmark", "synth", "--n", "1", "--limit", "1", "--out", str(tmp_path / "r")]
    assert main([*argv, "--engine", "vllm"]) == 2
    err = capsys.readouterr().err
    assert "vllm" in err and "pip install vllm" in err
