"""The GPU RL-step benchmark (tests/perf/bench_gpu_rl_step.py) runs end to end in its CPU smoke mode: the same arms
in their own processes through the trainer's own step, its table and its JSON; an arm that cannot run says why."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parents[1] / "perf" / "bench_gpu_rl_step.py"


def test_the_smoke_run_measures_the_hf_arm_and_says_why_the_others_are_skipped(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--out", str(out), "--work", str(tmp_path / "work")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    hf = report["arms"]["hf"]
    assert hf["steps"] == 2 and hf["response_tokens"] > 0 and hf["tokens_per_s"] > 0, hf
    for name in ("time/rollout", "time/sandbox_wait", "time/update", "time/total"):
        assert 0 <= hf[name] <= hf["time/total"], name
    assert hf["rollout/logprob_diff"] < 1e-4, "the HF engine and the trainer share one model"
    for arm in ("vllm", "vllm+lora"):  # the smoke mode runs on the CPU, where vLLM cannot
        assert "CUDA" in report["arms"][arm]["skipped"], arm
    assert report["arms"]["hf+lora"].get("skipped") or report["arms"]["hf+lora"]["tokens_per_s"] > 0
    assert "tokens_per_s" in proc.stdout and "vLLM rollouts need a CUDA device" in proc.stdout
