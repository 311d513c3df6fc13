"""The trainers' accelerate setup: precision choices and one Accelerator per run within one process."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from execrl.benchmarks.errors import UserError  # noqa: E402
from execrl.trainers.devices import make_accelerator, mixed_precision  # noqa: E402


@pytest.mark.parametrize(
    ("device", "precision", "expected"),
    [
        ("cpu", "auto", "no"),
        ("cpu", "fp32", "no"),
        ("cuda", "auto", "bf16"),
        ("cuda", "fp16", "fp16"),
        ("cuda", "fp32", "no"),
    ],
    ids=["cpu-auto-trains-in-fp32", "cpu-fp32", "gpu-auto-is-bf16", "gpu-fp16", "gpu-fp32-is-no-autocast"],
)
def test_mixed_precision_for_accelerate(monkeypatch, device: str, precision: str, expected: str) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert mixed_precision(SimpleNamespace(type=device), precision) == expected


@pytest.mark.parametrize(
    ("precision", "named"),
    [("bf16", "needs a CUDA device"), ("fp16", "needs a CUDA device"), ("float16", "auto, fp32, bf16, fp16")],
    ids=["bf16-on-cpu", "fp16-on-cpu", "a-torch-dtype-name"],
)
def test_mixed_precision_refuses_with_a_message_naming_the_flag(precision: str, named: str) -> None:
    with pytest.raises(UserError, match=named) as caught:
        mixed_precision(torch.device("cpu"), precision)
    assert str(caught.value).startswith("--precision")


def test_a_later_run_in_the_same_process_gets_its_own_settings() -> None:
    """accelerate keeps one state per process: without a reset a second Accelerator asking for other settings
    is refused (the pipeline trains SFT and then PPO in one process)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)  # whatever an earlier test left
    Accelerator(cpu=True, mixed_precision="bf16")  # an earlier run's settings (bf16 autocast works on CPU)
    accelerator = make_accelerator("cpu", "fp32")
    assert accelerator.mixed_precision == "no" and accelerator.device.type == "cpu"
