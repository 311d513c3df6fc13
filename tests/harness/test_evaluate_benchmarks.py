"""`execrl evaluate` on the evalplus and LiveCodeBench fixture files, in the real sandbox: issue 12's MBPP+ ids
outside 11-510 are accepted under the default split, and LiveCodeBench's date window reaches the run."""

from __future__ import annotations

import json
from pathlib import Path

from tests.benchmarks.upstream_fixtures import MBPP_PLUS, write_livecodebench, write_release
from tests.commands import command

main = command("evaluate")


def _run(tmp_path: Path, benchmark: str, rows: list[dict], *extra: str) -> tuple[int, Path]:
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "run"
    flags = ["--benchmark", benchmark, "--samples", str(samples), "--out", str(out), "--data-dir", str(tmp_path)]
    return main([*flags, "--workers", "1", "--k", "1", *extra]), out


def test_mbppplus_samples_outside_mbpps_test_range_are_evaluated_under_the_default_split(tmp_path: Path) -> None:
    write_release(tmp_path, "mbppplus")
    rows = [{"task_id": row["task_id"], "solution": row["canonical_solution"]} for row in MBPP_PLUS]
    rows.append({"task_id": 809, "solution": "def check_smaller(a, b):\n    return True\n"})  # a bare id, wrong
    code, out = _run(tmp_path, "mbppplus", rows)
    assert code == 0
    results = {(r["task_id"], r["completion_id"]): r["verdict"] for r in map(json.loads, open(out / "results.jsonl"))}
    assert results == {("Mbpp/2", 0): "passed", ("Mbpp/17", 0): "passed", ("Mbpp/809", 0): "passed",
                       ("Mbpp/809", 1): "failed"}  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["metrics"]["pass@1"] == (1 + 1 + 0.5) / 3


def test_livecodebench_since_keeps_only_later_problems_and_is_part_of_the_runs_identity(tmp_path: Path) -> None:
    write_livecodebench(tmp_path)
    rows = [{"task_id": "LCB/1873_A", "solution": "print(int(input()) / 2)\n"}]
    code, out = _run(tmp_path, "livecodebench", rows, "--since", "2024-01-01")
    assert code == 0
    assert json.loads((out / "metrics.json").read_text())["metrics"]["pass@1"] == 1.0
    assert main(["--benchmark", "livecodebench", "--samples", str(tmp_path / "samples.jsonl"), "--out", str(out),
                 "--data-dir", str(tmp_path), "--since", "2023-01-01"]) == 2  # fmt: skip


def test_a_livecodebench_sample_from_before_the_window_is_refused_as_unknown(tmp_path: Path) -> None:
    write_livecodebench(tmp_path)
    rows = [{"task_id": "abc301_a", "solution": "print(3)\n"}]
    assert _run(tmp_path, "livecodebench", rows, "--since", "2024-01-01")[0] == 2
