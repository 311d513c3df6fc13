"""SFT, the reward model and the critic resume a killed run from their last checkpoint, exactly.

Each trainer runs twice on the same data: once straight through, and once crashed two steps after a checkpoint,
then rerun on the same folder. The rerun must continue after the checkpoint (not start over), drop the log rows
the crashed run wrote past it, and end with the same loss curve and the same weights as the straight run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from execrl.benchmarks.errors import UserError  # noqa: E402
from execrl.trainers import devices, step_checkpoint  # noqa: E402
from execrl.trainers.critic import CriticConfig, train_critic  # noqa: E402
from execrl.trainers.reward_model import RMConfig, train_reward_model  # noqa: E402
from execrl.trainers.sft import SFTConfig, train_sft  # noqa: E402
from execrl.trainers.tiny import build_tiny_model  # noqa: E402

from tests.trainers.test_critic import labelled_programs  # noqa: E402
from tests.trainers.test_reward_model import separable_pairs  # noqa: E402
from tests.trainers.test_sft import ROWS as SFT_ROWS  # noqa: E402

STEPS, SAVE_EVERY, CRASH_AT = 10, 4, 6


class Crash(Exception):
    """Stands in for a kill: raised in the loop two steps after the checkpoint at step 4."""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("data")
    files = {
        "sft": SFT_ROWS,
        "rm": separable_pairs(40),
        "critic": labelled_programs(12),
    }
    paths = {}
    for name, rows in files.items():
        paths[name] = folder / f"{name}.jsonl"
        paths[name].write_text("".join(json.dumps(r) + "\n" for r in rows))
    corpus = [json.dumps(r) for rows in files.values() for r in rows]
    tiny = {"vocab_size": 300, "n_layer": 1, "d_model": 64, "max_positions": 128}
    paths["model"] = build_tiny_model(folder / "tiny", corpus, **tiny)
    return paths


TRAINERS = {
    # name: (config class, trainer, its data flag, settings); dropout is on in SFT's train mode: the RNG matters
    "sft": (SFTConfig, train_sft, "data", {"batch_size": 4}),
    "rm": (RMConfig, train_reward_model, "pairs", {"batch_size": 8}),
    "critic": (CriticConfig, train_critic, "data", {"batch_size": 8}),
}


def _config(name: str, data: dict[str, Path], out: Path, **extra):
    cls, _, data_flag, settings = TRAINERS[name]
    values = {"max_steps": STEPS, "save_every": SAVE_EVERY, "max_length": 128, **settings, **extra}
    return cls(model=str(data["model"]), out=out, **{data_flag: str(data[name])}, **values)


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def _curve(out: Path) -> list[tuple[int, float]]:
    return [(row["step"], next(v for k, v in row.items() if k.endswith("/loss"))) for row in _log(out)]


def _losses(out: Path) -> list[float]:
    return [loss for _, loss in _curve(out)]


def _weights(out: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(out / "model.safetensors")


def _crashing(monkeypatch: pytest.MonkeyPatch, train, cfg) -> None:
    """Run `train(cfg)` with a crash two steps after the checkpoint at step 4."""
    original = devices.SupervisedRun.checkpoint

    def checkpoint(self, step: int, steps: int) -> None:
        original(self, step, steps)
        if step == CRASH_AT:
            raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(devices.SupervisedRun, "checkpoint", checkpoint)
        with pytest.raises(Crash):
            train(cfg)


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_a_crashed_run_resumes_after_its_checkpoint_with_the_same_curve_and_weights(
    name: str, data: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    train = TRAINERS[name][1]
    straight = train(_config(name, data, tmp_path / "straight"))

    crashed = tmp_path / "crashed"
    _crashing(monkeypatch, train, _config(name, data, crashed))
    assert step_checkpoint.exists(crashed)
    assert [step for step, _ in _curve(crashed)] == list(range(1, CRASH_AT + 1))  # rows 5 and 6 past the checkpoint

    train(_config(name, data, crashed))
    assert [step for step, _ in _curve(crashed)] == list(range(1, STEPS + 1))
    assert _losses(crashed) == pytest.approx(_losses(straight), rel=1e-6)
    a, b = _weights(straight), _weights(crashed)
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert not step_checkpoint.exists(crashed) and not (crashed / "checkpoint.tmp").exists()


def test_resume_starts_after_the_checkpoint_not_from_scratch(
    data: dict[str, Path], tmp_path: Path, monkeypatch, capsys
) -> None:
    out = tmp_path / "out"
    _crashing(monkeypatch, train_sft, _config("sft", data, out))
    capsys.readouterr()
    train_sft(_config("sft", data, out))
    assert f"resuming after step {SAVE_EVERY}" in capsys.readouterr().err


def test_an_unfinished_run_of_other_settings_is_refused_and_force_starts_over(
    data: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "out"
    _crashing(monkeypatch, train_sft, _config("sft", data, out))
    with pytest.raises(UserError, match="other settings.*lr"):
        train_sft(_config("sft", data, out, lr=1e-3))
    train_sft(_config("sft", data, out, lr=1e-3, force=True))
    assert [step for step, _ in _curve(out)] == list(range(1, STEPS + 1))


def test_checkpoint_frequency_is_not_part_of_the_runs_identity(data: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    train_sft(_config("sft", data, out, max_steps=3))
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    train_sft(_config("sft", data, out, max_steps=3, save_every=1))  # the same finished run: nothing to do
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp
