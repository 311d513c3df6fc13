"""SFT: loss falls and weights move, LoRA saves a loadable merged model, the CLI runs, resumes and refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from execrl.harness.cli import main as execrl  # noqa: E402
from execrl.trainers.sft import SFTConfig, train_sft  # noqa: E402
from execrl.trainers.tiny import build_tiny_model  # noqa: E402

ROWS = [{"prompt": f"# return x plus {i}\n", "completion": f"def f(x):\n    return x + {i}\n"} for i in range(24)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    corpus = [r["prompt"] + r["completion"] for r in ROWS]
    return build_tiny_model(folder / "model", corpus, vocab_size=300, n_layer=1, d_model=64, max_positions=64)


@pytest.fixture()
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def _weights(folder: Path) -> dict[str, object]:
    from transformers import AutoModelForCausalLM

    return {k: v.clone() for k, v in AutoModelForCausalLM.from_pretrained(folder).state_dict().items()}


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_sft_loss_falls_and_parameters_change(tiny: Path, data_file: Path, tmp_path: Path) -> None:
    out = train_sft(SFTConfig(model=str(tiny), out=tmp_path / "out", data=str(data_file), max_steps=30, batch_size=8))
    log = _log(out)
    assert len(log) == 30
    first, last = sum(r["sft/loss"] for r in log[:3]) / 3, sum(r["sft/loss"] for r in log[-3:]) / 3
    assert last < 0.8 * first
    before, after = _weights(tiny), _weights(out)
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_learning_rate_warms_up_then_decays(tiny: Path, data_file: Path, tmp_path: Path) -> None:
    cfg = SFTConfig(model=str(tiny), out=tmp_path / "out", data=str(data_file), max_steps=20, warmup_share=0.25)
    lrs = [r["sft/lr"] for r in _log(train_sft(cfg))]
    peak = lrs.index(max(lrs))
    assert lrs[0] < lrs[peak] and peak in (4, 5)
    assert all(a >= b for a, b in zip(lrs[peak:-1], lrs[peak + 1 :], strict=True))
    assert max(lrs) == pytest.approx(cfg.lr)


def test_lora_run_saves_a_merged_model_that_loads_without_peft(tiny: Path, data_file: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = SFTConfig(model=str(tiny), out=tmp_path / "out", data=str(data_file), max_steps=10, lora_r=4, lr=1e-2)
    out = train_sft(cfg)
    assert not (out / "adapter_config.json").exists()
    model = AutoModelForCausalLM.from_pretrained(out)
    assert not any("lora" in name for name, _ in model.named_parameters())
    before = _weights(tiny)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    AutoTokenizer.from_pretrained(out)


def test_rerun_of_a_finished_run_does_nothing(tiny: Path, data_file: Path, tmp_path: Path) -> None:
    cfg = SFTConfig(model=str(tiny), out=tmp_path / "out", data=str(data_file), max_steps=3)
    train_sft(cfg)
    stamp = (tmp_path / "out" / "model.safetensors").stat().st_mtime_ns
    train_sft(cfg)
    assert (tmp_path / "out" / "model.safetensors").stat().st_mtime_ns == stamp


def test_cli_trains_and_writes_a_model_folder(tiny: Path, data_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["train", "sft", "--model", str(tiny), "--data", str(data_file), "--out", str(out), "--max-steps", "2"]
    assert execrl(argv) == 0
    assert (out / "config.json").is_file() and (out / "train_config.json").is_file()
    assert len(_log(out)) == 2


@pytest.mark.parametrize(
    ("setup", "extra", "needle"),
    [
        ("other_run", ["--max-steps", "3"], "--force"),  # a finished run with another config is not replaced
        ("stray_file", [], "--force"),  # a folder with unknown content is not overwritten
        ("bad_line", [], "data.jsonl:2"),  # a broken input line is named by file and line
        ("no_model", [], "--model"),  # a model folder that does not exist names the flag
    ],
    ids=["different-config", "non-empty-folder", "bad-jsonl-line", "missing-model"],
)
def test_cli_refuses_with_a_clear_message(
    setup: str, extra: list[str], needle: str, tiny: Path, data_file: Path, tmp_path: Path, capsys
) -> None:
    out, model = tmp_path / "out", str(tiny)
    if setup == "other_run":
        first = ["train", "sft", "--model", model, "--data", str(data_file), "--out", str(out), "--max-steps", "2"]
        assert execrl(first) == 0
    elif setup == "stray_file":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    elif setup == "bad_line":
        data_file.write_text(json.dumps(ROWS[0]) + "\n{not json\n")
    elif setup == "no_model":
        model = str(tmp_path / "nowhere")
    capsys.readouterr()
    argv = ["train", "sft", "--model", model, "--data", str(data_file), "--out", str(out), "--max-steps", "1", *extra]
    assert execrl(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
