"""`execrl report leaderboard`: ordering, ranks, settings columns, and the three files."""

from __future__ import annotations

import pandas as pd

from tests.commands import command

leaderboard_main = command("report", "leaderboard")


def _outcomes(solved: int, n_tasks: int = 10, n: int = 2) -> dict[str, list[bool]]:
    return {f"synth/{i}": [i < solved] * n for i in range(n_tasks)}


def test_runs_are_ranked_best_first_per_benchmark_and_metric(make_run, tmp_path) -> None:
    runs = [
        make_run("mid", _outcomes(5), config={"temperature": 0.8}),
        make_run("best", _outcomes(9), config={"temperature": 0.2, "date": "2024-05-01"}),
        make_run("worst", _outcomes(1)),
    ]
    assert leaderboard_main([*map(str, runs), "--out", str(tmp_path / "lb")]) == 0
    frame = pd.read_csv(tmp_path / "lb" / "leaderboard.csv")
    pass1 = frame[frame.metric == "pass@1"]
    assert pass1.run.tolist() == ["best", "mid", "worst"]
    assert pass1["rank"].tolist() == [1, 2, 3]
    best = pass1.iloc[0]
    assert (best.temperature, best.date, best.model, best.n) == (0.2, "2024-05-01", "tiny", 2)
    markdown = (tmp_path / "lb" / "leaderboard.md").read_text()
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [row.split(" | ")[1] for row in rows] == ["best", "mid", "worst"]
    assert '<table class="sortable">' in (tmp_path / "lb" / "leaderboard.html").read_text()


def test_ties_share_the_best_rank_and_each_benchmark_is_ranked_alone(make_run, tmp_path) -> None:
    make_run("a/synth", _outcomes(5), benchmark="synth")
    make_run("a/humaneval", _outcomes(2), benchmark="humaneval")
    make_run("b/synth", _outcomes(5), benchmark="synth")
    make_run("b/humaneval", _outcomes(7), benchmark="humaneval")
    assert leaderboard_main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "lb")]) == 0
    frame = pd.read_csv(tmp_path / "lb" / "leaderboard.csv").set_index(["benchmark", "metric", "run"])
    assert frame.loc[("synth", "pass@1", "a"), "rank"] == frame.loc[("synth", "pass@1", "b"), "rank"] == 1
    assert frame.loc[("humaneval", "pass@1", "b"), "rank"] == 1
    assert frame.loc[("humaneval", "pass@1", "a"), "rank"] == 2


def test_rerun_on_other_runs_is_refused_without_force(make_run, tmp_path, capsys) -> None:
    a, b = make_run("a", _outcomes(3)), make_run("b", _outcomes(4))
    out = str(tmp_path / "lb")
    assert leaderboard_main([str(a), "--out", out]) == 0
    assert leaderboard_main([str(a), "--out", out]) == 0  # same inputs: nothing to redo
    assert leaderboard_main([str(a), str(b), "--out", out]) == 2
    assert "--force" in capsys.readouterr().err
    assert leaderboard_main([str(a), str(b), "--out", out, "--force"]) == 0
    assert set(pd.read_csv(tmp_path / "lb" / "leaderboard.csv").run) == {"a", "b"}


def test_rows_carry_cis_and_settings_and_a_mismatch_is_warned(make_run, tmp_path) -> None:
    limits = {"timeout": 3.0, "memory": 2 * 1024**3}
    runs = [
        make_run("a", _outcomes(5), config={"temperature": 0.2, "limits": limits}),
        make_run("b", _outcomes(8), config={"temperature": 0.2, "limits": {**limits, "timeout": 10.0}}),
    ]
    assert leaderboard_main([*map(str, runs), "--out", str(tmp_path / "lb")]) == 0
    frame = pd.read_csv(tmp_path / "lb" / "leaderboard.csv").set_index(["metric", "run"])
    assert frame.loc[("pass@1", "a"), "ci_lo"] <= 0.5 <= frame.loc[("pass@1", "a"), "ci_hi"]
    assert pd.isna(frame.loc[("syntax_rate", "a"), "ci_lo"])  # CIs for pass@k only
    assert frame.loc[("pass@1", "b"), ["timeout_s", "memory_gib", "n_problems"]].tolist() == [10.0, 2.0, 10]
    markdown = (tmp_path / "lb" / "leaderboard.md").read_text()
    assert (
        "**WARNING: rows were evaluated under different settings, not directly comparable: timeout_s (10: b; 3: a).**"
        in markdown
    )


def test_same_settings_give_no_warning(make_run, tmp_path) -> None:
    runs = [make_run(name, _outcomes(k), config={"temperature": 0.2}) for name, k in (("a", 3), ("b", 6))]
    assert leaderboard_main([*map(str, runs), "--out", str(tmp_path / "lb")]) == 0
    assert "WARNING" not in (tmp_path / "lb" / "leaderboard.md").read_text()
