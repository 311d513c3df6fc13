"""The user's flow, one command at a time: generate (tiny local model) -> evaluate -> report compare ->
report leaderboard -> report check, as subprocesses of the installed `execrl` entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def execrl(*args: str, expect: int = 0) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [sys.executable, "-m", "execrl.harness.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == expect, f"execrl {' '.join(args)} exited {out.returncode}:\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from execrl.benchmarks.synth import load_synth, sft_corpus
    from execrl.trainers.tiny import build_tiny_model

    corpus = [row["prompt"] + row["completion"] for row in sft_corpus(load_synth("train", n=200))]
    return build_tiny_model(tmp_path_factory.mktemp("model"), corpus, d_model=64, n_layer=1, seed=0)


@pytest.mark.slow
def test_generate_evaluate_compare_leaderboard_check_each_as_a_command(tiny_model: Path, tmp_path: Path) -> None:
    runs = {}
    for name, temperature in (("cold", "0.2"), ("hot", "1.0")):
        run = tmp_path / name
        execrl(
            "generate",
            "--model",
            str(tiny_model),
            "--benchmark",
            "synth",
            "--limit",
            "6",
            "--n",
            "3",
            "--temperature",
            temperature,
            "--max-new-tokens",
            "32",
            "--seed",
            "1",
            "--out",
            str(run),
        )
        execrl(
            "evaluate",
            "--benchmark",
            "synth",
            "--samples",
            str(run / "samples.jsonl"),
            "--out",
            str(run),
            "--workers",
            "2",
            "--k",
            "1,3",
        )
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["n_samples"] == 18 and metrics["n_problems"] == 6
        assert set(metrics["metrics"]) >= {"pass@1", "pass@3", "syntax_rate"}
        runs[name] = run

    report = tmp_path / "report"
    execrl("report", "compare", str(runs["cold"]), str(runs["hot"]), "--names", "cold", "hot", "--out", str(report))
    comparison = json.loads((report / "comparison.json").read_text())
    assert (comparison["baseline"], comparison["candidate"]) == ("cold", "hot")
    cell = comparison["metrics"]["synth"]["pass@1"]
    assert cell["delta"] == pytest.approx(cell["candidate"] - cell["baseline"])
    assert (report / "report.html").stat().st_size > 10_000  # plots are embedded

    board = tmp_path / "board"
    execrl("report", "leaderboard", str(runs["cold"]), str(runs["hot"]), "--out", str(board))
    assert {"leaderboard.md", "leaderboard.html", "leaderboard.csv"} <= {p.name for p in board.iterdir()}

    # A run checked against itself never regresses; an impossible tolerance on a missing metric is unusable.
    def check_against_cold(candidate: str, metric: str, expect: int = 0) -> subprocess.CompletedProcess:
        flags = ["--baseline", str(runs["cold"]), "--candidate", str(runs[candidate]), "--metric", metric]
        return execrl("report", "check", *flags, "--max-drop", "0.0", expect=expect)

    assert check_against_cold("cold", "pass@1").stdout.startswith("OK")
    check_against_cold("hot", "pass@999", expect=2)
