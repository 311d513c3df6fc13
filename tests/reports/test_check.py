"""`execrl report check`: its three exit codes and its one verdict line."""

from __future__ import annotations

import json

import pytest

from tests.commands import command

check_main = command("report", "check")


def _runs(n_tasks: int, solved: int) -> dict[str, list[bool]]:
    return {f"synth/{i}": [i < solved] for i in range(n_tasks)}


@pytest.mark.parametrize(
    "base_solved, cand_solved, max_drop, code, verdict",
    [
        (50, 40, 0.02, 1, "FAIL pass@1 dropped 0.100 (0.500 -> 0.400) > max-drop 0.020 on synth"),
        (50, 49, 0.02, 0, "OK pass@1 dropped 0.010 (0.500 -> 0.490) <= max-drop 0.020 on synth"),
        (50, 60, 0.02, 0, "OK pass@1 improved 0.100 (0.500 -> 0.600) <= max-drop 0.020 on synth"),
        (50, 40, 0.15, 0, "OK pass@1 dropped 0.100 (0.500 -> 0.400) <= max-drop 0.150 on synth"),
    ],
    ids=["drop-beyond-tolerance-fails", "drop-within-tolerance-passes", "improvement-passes", "looser-tolerance"],
)
def test_exit_code_and_verdict_line_follow_the_drop(
    make_run, capsys, base_solved, cand_solved, max_drop, code, verdict
) -> None:
    base, cand = make_run("base", _runs(100, base_solved)), make_run("cand", _runs(100, cand_solved))
    assert check_main(["--baseline", str(base), "--candidate", str(cand), "--max-drop", str(max_drop)]) == code
    assert capsys.readouterr().out.strip().splitlines() == [verdict]


def test_bare_metrics_json_files_are_accepted(make_run) -> None:
    base, cand = make_run("base", _runs(100, 50)), make_run("cand", _runs(100, 40))
    argv = ["--baseline", str(base / "metrics.json"), "--candidate", str(cand / "metrics.json")]
    assert check_main(argv) == 1


@pytest.mark.parametrize(
    "base_solved, cand_solved, n_tasks, code",
    [(6, 3, 10, 0), (60, 20, 100, 1)],
    ids=["big-drop-on-few-problems-is-not-significant", "big-drop-on-many-problems-is-significant"],
)
def test_require_significance_fails_only_significant_drops(
    make_run, capsys, base_solved, cand_solved, n_tasks, code
) -> None:
    base = make_run("base", _runs(n_tasks, base_solved))
    cand = make_run("cand", _runs(n_tasks, cand_solved))
    argv = ["--baseline", str(base / "metrics.json"), "--candidate", str(cand), "--require-significance"]
    assert check_main(argv) == code
    line = capsys.readouterr().out
    assert ("not significant" in line) == (code == 0) and "p=" in line


def _edit_metrics(folder, **changes) -> None:
    path = folder / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics.update(changes)
    path.write_text(json.dumps(metrics))


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing-file", "no such run folder"),
        ("metric-absent", "metric 'pass@7' absent"),
        ("benchmark-mismatch", "benchmark mismatch"),
        ("named-benchmark-absent", "has no benchmark 'humaneval'"),
        ("bad-json", "not valid JSON"),
        ("significance-without-per-problem-data", "--require-significance needs per-problem"),
    ],
    ids=lambda v: v if " " not in v else "",
)
def test_unusable_input_exits_2_with_a_message(make_run, tmp_path, capsys, case, message) -> None:
    base, cand = make_run("base", _runs(10, 5)), make_run("cand", _runs(10, 5))
    argv = ["--baseline", str(base), "--candidate", str(cand)]
    if case == "missing-file":
        argv[3] = str(tmp_path / "nope")
    elif case == "metric-absent":
        argv += ["--metric", "pass@7"]
    elif case == "benchmark-mismatch":
        _edit_metrics(cand, benchmark="humaneval")
    elif case == "named-benchmark-absent":
        argv += ["--benchmark", "humaneval"]
    elif case == "bad-json":
        (cand / "metrics.json").write_text("{not json")
    else:
        _edit_metrics(base, per_problem={})
        (base / "results.jsonl").unlink()
        argv[1] = str(base / "metrics.json")
        argv += ["--require-significance"]
    assert check_main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_lower_is_better_metric_counts_a_rise_as_the_drop(make_run, capsys) -> None:
    base, cand = make_run("base", _runs(10, 5)), make_run("cand", _runs(10, 5))
    _edit_metrics(base, metrics={"mean_completion_chars": 100.0})
    _edit_metrics(cand, metrics={"mean_completion_chars": 150.0})
    argv = ["--baseline", str(base), "--candidate", str(cand), "--metric", "mean_completion_chars", "--max-drop", "10"]
    assert check_main(argv) == 1
    assert capsys.readouterr().out.startswith("FAIL mean_completion_chars dropped 50.000")


def test_worst_benchmark_decides_when_several_are_checked(make_run, tmp_path, capsys) -> None:
    for bench, solved in (("synth", 50), ("humaneval", 50)):
        make_run(f"base/{bench}", _runs(100, solved), benchmark=bench)
    for bench, solved in (("synth", 52), ("humaneval", 45)):
        make_run(f"cand/{bench}", _runs(100, solved), benchmark=bench)
    base, cand = tmp_path / "base", tmp_path / "cand"
    assert check_main(["--baseline", str(base), "--candidate", str(cand)]) == 1
    assert capsys.readouterr().out.strip().endswith("on humaneval")
    assert check_main(["--baseline", str(base), "--candidate", str(cand), "--benchmark", "synth"]) == 0


def _hacks(n_tasks: int, hacking: int) -> dict[str, list[dict[str, int]]]:
    return {f"synth/{i}": [{"opaque_answer": 1} if i < hacking else {}] for i in range(n_tasks)}


@pytest.mark.parametrize(
    "base_hacking, cand_hacking, code, verdict",
    [
        (5, 40, 1, "FAIL hack_attempt_rate dropped 0.350 (0.050 -> 0.400) > max-drop 0.020 on synth"),
        (5, 6, 0, "OK hack_attempt_rate dropped 0.010 (0.050 -> 0.060) <= max-drop 0.020 on synth"),
        (40, 5, 0, "OK hack_attempt_rate improved 0.350 (0.400 -> 0.050) <= max-drop 0.020 on synth"),
    ],
    ids=["more-cheating-fails", "a-rise-within-tolerance-passes", "less-cheating-passes"],
)
def test_hack_attempt_rate_gate_fails_a_candidate_that_tries_to_cheat_more(
    make_run, capsys, base_hacking, cand_hacking, code, verdict
) -> None:
    base = make_run("base", _runs(100, 50), hacks=_hacks(100, base_hacking))
    cand = make_run("cand", _runs(100, 50), hacks=_hacks(100, cand_hacking))
    argv = ["--baseline", str(base), "--candidate", str(cand), "--metric", "hack_attempt_rate"]
    assert check_main(argv) == code
    assert capsys.readouterr().out.strip().splitlines() == [verdict]
    assert check_main([*argv, "--require-significance"]) == code, "per-problem values come from results.jsonl"


def test_format_md_prints_one_paragraph_naming_every_benchmark(make_run, capsys) -> None:
    for name, synth, humaneval in (("base", 50, 30), ("cand", 40, 35)):
        make_run(f"{name}/synth", _runs(100, synth))
        make_run(f"{name}/humaneval", _runs(100, humaneval), benchmark="humaneval")
    root = make_run("x", _runs(1, 1)).parent
    argv = ["--baseline", str(root / "base"), "--candidate", str(root / "cand"), "--format", "md"]
    assert check_main(argv) == 1
    out = capsys.readouterr().out.strip()
    assert "\n" not in out
    assert out.startswith(
        "**execrl report check: FAIL.** pass@1 on synth 0.500 → 0.400 (-10.0 points), beyond --max-drop"
    )
    assert "Also checked: humaneval 0.300 → 0.350 (+5.0 points)." in out
    assert out.endswith(f"Baseline {root / 'base'}, candidate {root / 'cand'}.")
