"""`execrl pipeline`: settings, stage markers and resume, and one small end-to-end run."""

from __future__ import annotations

import json

import pytest
from execrl.trainers import pipeline
from execrl.trainers.data import UsageError
from execrl.trainers.pipeline import DEFAULTS, PipelineConfig, load_settings, main, run_pipeline


def test_yaml_overrides_merge_into_sections_and_limit_overrides_humaneval(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("sft:\n  max_steps: 5\neval:\n  n: 2\n")
    settings = load_settings(path, limit=3)
    assert settings["sft"]["max_steps"] == 5 and settings["sft"]["lr"] == DEFAULTS["sft"]["lr"]
    assert settings["eval"]["n"] == 2 and settings["eval"]["limit"]["humaneval"] == 3
    assert DEFAULTS["eval"]["limit"]["humaneval"] != 3  # the defaults themselves are untouched


@pytest.mark.parametrize(
    ("text", "named"),
    [("modle: x\n", "modle"), ("eval: [1, 2\n", "not valid YAML")],
    ids=["misspelt-top-level-key", "broken-yaml"],
)
def test_bad_config_files_exit_2_naming_the_problem(tmp_path, capsys, text, named) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert main(["--out", str(tmp_path / "o"), "--config", str(path)]) == 2
    assert named in capsys.readouterr().err


def test_missing_config_file_exits_2(tmp_path, capsys) -> None:
    assert main(["--out", str(tmp_path / "o"), "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml" in capsys.readouterr().err


def test_finished_stages_are_skipped_and_timings_written(tmp_path, monkeypatch) -> None:
    calls: list[str] = []
    for name in ("model0", "sft", "ppo", "report"):
        monkeypatch.setattr(pipeline, f"stage_{name}", lambda s, o, n=name: calls.append(n))
    monkeypatch.setattr(pipeline, "stage_eval", lambda s, o, who: calls.append(f"{who}_eval"))
    run_pipeline(PipelineConfig(out=tmp_path))
    assert calls == ["model0", "sft", "ppo", "sft_eval", "ppo_eval", "report"]
    (tmp_path / "stages" / "ppo_eval.json").unlink()  # as if it had been interrupted
    run_pipeline(PipelineConfig(out=tmp_path))
    assert calls[6:] == ["ppo_eval"]
    timings = json.loads((tmp_path / "timings.json").read_text())
    assert set(timings["stages"]) == {"model0", "sft", "ppo", "sft_eval", "ppo_eval", "report"}
    assert 0.0 <= timings["sandbox_share"] <= 1.0


def test_rerun_with_other_settings_is_refused_without_force(tmp_path, monkeypatch) -> None:
    for name in ("model0", "sft", "ppo", "report", "eval"):
        monkeypatch.setattr(pipeline, f"stage_{name}", lambda *a: None)
    run_pipeline(PipelineConfig(out=tmp_path))
    with pytest.raises(UsageError, match="--force"):
        run_pipeline(PipelineConfig(out=tmp_path, limit=1))
    run_pipeline(PipelineConfig(out=tmp_path, limit=1, force=True))


@pytest.mark.slow
def test_small_pipeline_runs_end_to_end_and_writes_the_report(tmp_path) -> None:
    config = tmp_path / "small.yaml"
    config.write_text(
        "tiny: {vocab_size: 300, n_layer: 1, n_head: 2, d_model: 32, max_positions: 128}\n"
        "sft: {max_steps: 20}\n"
        "ppo: {iterations: 2, batch_size: 8, minibatch_size: 8, eval_every: 0, max_new_tokens: 16}\n"
        "eval: {n: 1, max_new_tokens: 16, limit: {synth: 11, humaneval: 2}}\n"
    )
    assert main(["--out", str(tmp_path / "run"), "--config", str(config)]) == 0
    run = tmp_path / "run"
    comparison = json.loads((run / "report" / "comparison.json").read_text())
    assert comparison["baseline"] == "SFT" and comparison["candidate"] == "PPO"
    assert (run / "report" / "report.html").is_file()
    assert (run / "ppo_eval" / "train" / "metrics.jsonl").is_file()
    for who in ("sft", "ppo"):
        for bench in ("synth", "humaneval"):
            assert (run / f"{who}_eval" / bench / "metrics.json").is_file()
