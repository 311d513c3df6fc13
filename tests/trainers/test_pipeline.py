"""`execrl pipeline`: settings, stage markers and resume, up-front validation, and one small end-to-end run."""

from __future__ import annotations

import json
import time

import pytest
from execrl.benchmarks.errors import UserError
from execrl.trainers import pipeline
from execrl.trainers.pipeline import SFT_DEFAULTS, EvalSettings, PipelineConfig, load_settings, run_pipeline

from tests.commands import command

main = command("pipeline")
STAGES = ("model0", "sft", "ppo", "report")


def _no_stages(monkeypatch) -> list[str]:
    """Replace every stage with a recorder: the tests see which stages would run."""
    calls: list[str] = []
    for name in STAGES:
        monkeypatch.setattr(pipeline, f"stage_{name}", lambda s, o, n=name: calls.append(n))
    monkeypatch.setattr(pipeline, "stage_eval", lambda s, o, who: calls.append(f"{who}_eval"))
    return calls


def test_yaml_overrides_merge_into_sections_and_limit_overrides_humaneval(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("sft:\n  max_steps: 5\neval:\n  n: 2\nppo:\n  lr: 0.001\n")
    settings = load_settings(PipelineConfig(out=tmp_path / "o", config=path, limit=3))
    assert settings.sft.max_steps == 5 and settings.sft.lr == SFT_DEFAULTS["lr"]
    assert settings.eval.n == 2 and settings.eval.limit == {"synth": 200, "humaneval": 3}
    assert settings.ppo.preset == "cpu-tiny" and settings.ppo.iterations == 80 and settings.ppo.lr == 0.001
    assert settings.sft.out == tmp_path / "o" / "sft" and settings.ppo.model == str(tmp_path / "o" / "sft")
    assert EvalSettings().limit["humaneval"] != 3  # the defaults themselves are untouched
    path.write_text("eval:\n  limit: {synth: 5}\n")  # a limit given replaces the default one: humaneval whole
    assert load_settings(PipelineConfig(out=tmp_path, config=path)).eval.limit == {"synth": 5}


def test_the_ppo_section_selects_the_estimator_and_its_options(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "ppo:\n  advantage: grpo\n  loss_agg: seq_mean_token_mean\n  kl_penalty: reward\n"
        "  dynamic_sampling: true\n  max_refill_rounds: 2\n"
    )
    ppo = load_settings(PipelineConfig(out=tmp_path / "o", config=path)).ppo
    assert (ppo.advantage, ppo.loss_agg, ppo.kl_penalty, ppo.dynamic_sampling, ppo.max_refill_rounds) == (
        "grpo", "seq_mean_token_mean", "reward", True, 2,
    )  # fmt: skip
    assert ppo.preset == "cpu-tiny" and ppo.iterations == 80 and not ppo.value_head
    assert load_settings(PipelineConfig(out=tmp_path / "o")).ppo.advantage == "gae", "the main job's default"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("modle: x\n", "unknown key 'modle'; did you mean 'model'?"),  # a misspelt top-level key
        ("ppo:\n  learning_rate: 1.0e-5\n", "ppo: unknown key 'learning_rate'"),  # not a PPOConfig field
        ("sft:\n  max_step: 5\n", "did you mean 'max_steps'?"),  # a near miss gets its suggestion
        ("ppo:\n  reward: partail\n", "ppo.reward: 'partail' is not one of"),  # a Literal choice, misspelt
        ("ppo:\n  preset: gpu\n", "ppo.preset: 'gpu'"),  # an unknown preset
        ("eval:\n  n: four\n", "eval.n: expected int, got 'four'"),  # a value of the wrong type
        ("eval:\n  benchmarks: [synth, humanevl]\n", "did you mean 'humaneval'?"),  # a benchmark name, misspelt
        ("sft:\n  model: /elsewhere\n", "sft: unknown key 'model'"),  # the pipeline sets the stage folders
        ("sft: 3\n", "section 'sft' must be a mapping"),  # a section that is not a mapping
        ("eval: [1, 2\n", "not valid YAML"),  # broken YAML
        ("eval:\n  limit: 20\n", "eval.limit must map benchmarks"),  # a number where a mapping belongs
        ("ppo:\n  preset: [cpu-tiny]\n", "ppo.preset"),  # a list where a preset name belongs
        ("ppo:\n  advantage: grpoo\n", "ppo.advantage: 'grpoo' is not one of"),  # an estimator name, misspelt
        ("ppo:\n  advantage: rloo\n  samples_per_prompt: 1\n", "needs --samples-per-prompt >= 2"),  # no group
    ],
    ids=[
        "misspelt-top-level-key",
        "unknown-ppo-key",
        "near-miss-suggestion",
        "misspelt-choice",
        "unknown-preset",
        "wrong-type",
        "misspelt-benchmark",
        "stage-folder-not-settable",
        "section-not-a-mapping",
        "broken-yaml",
        "limit-not-a-mapping",
        "preset-not-a-name",
        "misspelt-estimator",
        "group-estimator-without-a-group",
    ],
)
def test_bad_config_files_exit_2_naming_the_problem_before_any_stage(
    tmp_path, capsys, monkeypatch, text, named
) -> None:
    calls = _no_stages(monkeypatch)
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert main(["--out", str(tmp_path / "o"), "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert named in err and len(err.strip().splitlines()) == 1, err
    assert calls == []


def test_missing_config_file_exits_2(tmp_path, capsys) -> None:
    assert main(["--out", str(tmp_path / "o"), "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml" in capsys.readouterr().err


def test_a_benchmark_without_its_data_fails_in_seconds_before_any_training(tmp_path, capsys, monkeypatch) -> None:
    # Before the up-front validation this failed in the eval stage, after SFT and PPO had run.
    calls = _no_stages(monkeypatch)
    monkeypatch.delenv("EXECRL_DATA_DIR", raising=False)
    path = tmp_path / "c.yaml"
    path.write_text(f"eval:\n  benchmarks: [synth, mbpp]\n  data_dir: {tmp_path / 'no-data'}\n")
    start = time.monotonic()
    assert main(["--out", str(tmp_path / "o"), "--config", str(path)]) == 2
    assert time.monotonic() - start < 5
    err = capsys.readouterr().err
    assert err.startswith("execrl pipeline: data directory") and "mbpp" in err and len(err.strip().splitlines()) == 1
    assert calls == [] and not (tmp_path / "o" / "stages").exists()


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("model: /no/such/model\n", "model '/no/such/model': no such model folder"),
        ("sft:\n  data: /no/rows.jsonl\n", "sft.data /no/rows.jsonl: no such file"),
        ("ppo:\n  reward_model_weight: 0.5\n", "--reward-model-weight 0.5 needs --reward-model DIR"),
    ],
    ids=["missing-model", "missing-sft-data", "weight-without-reward-model"],
)
def test_missing_inputs_are_refused_before_the_first_stage(tmp_path, capsys, monkeypatch, text, named) -> None:
    calls = _no_stages(monkeypatch)
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert main(["--out", str(tmp_path / "o"), "--config", str(path)]) == 2
    assert named in capsys.readouterr().err and calls == []


def test_finished_stages_are_skipped_and_timings_written(tmp_path, monkeypatch) -> None:
    calls = _no_stages(monkeypatch)
    run_pipeline(PipelineConfig(out=tmp_path))
    assert calls == ["model0", "sft", "ppo", "sft_eval", "ppo_eval", "report"]
    (tmp_path / "stages" / "ppo_eval.json").unlink()  # as if it had been interrupted
    run_pipeline(PipelineConfig(out=tmp_path))
    assert calls[6:] == ["ppo_eval"]
    timings = json.loads((tmp_path / "timings.json").read_text())
    assert set(timings["stages"]) == {"model0", "sft", "ppo", "sft_eval", "ppo_eval", "report"}
    assert 0.0 <= timings["sandbox_share"] <= 1.0


def test_rerun_with_other_settings_is_refused_without_force(tmp_path, monkeypatch) -> None:
    _no_stages(monkeypatch)
    run_pipeline(PipelineConfig(out=tmp_path))
    with pytest.raises(UserError, match="--force"):
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
