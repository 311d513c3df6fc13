"""CodeRL critic: verdict classes, rows from a run folder, beats the majority class, CLI runs and refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from execrl.benchmarks.synth import load_synth  # noqa: E402
from execrl.harness.cli import main as execrl  # noqa: E402
from execrl.harness.records import Verdict  # noqa: E402
from execrl.harness.sandbox.pool import execute_many  # noqa: E402
from execrl.trainers.critic import CLASS_OF, CLASSES, Critic, CriticConfig, rows_from_run, train_critic  # noqa: E402
from execrl.trainers.tiny import build_tiny_model  # noqa: E402


def labelled_programs(n_problems: int) -> list[dict[str, str]]:
    """Four programs per synth problem, labelled by the real sandbox.

    The correct reference, a subtly wrong one (failed, or a runtime error for some edits), the def line
    without its colon (syntax error) and a body raising before it returns (runtime error).
    """
    problems, programs = [], []
    for problem in load_synth("train", n=n_problems):
        correct, wrong = problem.solutions[0], problem.metadata["wrong_solutions"][0]
        def_line, body = correct.split("\n", 1)
        arg = def_line[def_line.index("(") + 1 : def_line.index(")")]
        raising = f"{def_line}\n    raise ValueError({arg})\n{body}"
        problems += [problem] * 4
        programs += [correct, wrong, def_line.rstrip(":") + "\n" + body, raising]
    results = execute_many(problems, programs, workers=1)
    return [
        {"prompt": problem.prompt, "program": program, "verdict": result.verdict.value}
        for problem, program, result in zip(problems, programs, results, strict=True)
    ]


@pytest.fixture(scope="module")
def labelled() -> list[dict[str, str]]:
    return labelled_programs(70)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, labelled: list[dict[str, str]]) -> Path:
    corpus = [r["prompt"] + r["program"] for r in labelled[:120]]
    folder = tmp_path_factory.mktemp("tiny") / "model"
    return build_tiny_model(folder, corpus, vocab_size=400, n_layer=1, d_model=64, max_positions=128)


@pytest.fixture()
def data_file(tmp_path: Path, labelled: list[dict[str, str]]) -> Path:
    path = tmp_path / "critic.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in labelled[:240]))
    return path


@pytest.mark.parametrize(
    ("verdict", "label"),
    [
        (Verdict.TIMEOUT, "runtime_error"),  # CodeRL counts a program that does not finish as a runtime error
        (Verdict.MEMORY_EXCEEDED, "runtime_error"),  # resource overruns are the program's fault
        (Verdict.OUTPUT_EXCEEDED, "runtime_error"),  # likewise
        (Verdict.SANDBOX_ERROR, None),  # says nothing about the program: dropped
        (Verdict.FAILED, "failed"),  # ran to the end with a wrong answer
    ],
    ids=["timeout", "memory", "output", "sandbox-error", "failed"],
)
def test_every_verdict_maps_to_a_critic_class_or_is_dropped(verdict: Verdict, label: str | None) -> None:
    assert CLASS_OF[verdict.value] == label
    assert set(CLASS_OF) == {v.value for v in Verdict}


def test_rows_from_run_join_samples_and_results_into_whole_programs(tmp_path: Path) -> None:
    problems = load_synth("test", n=2)
    samples = [{"task_id": p.task_id, "completion": p.solutions[0]} for p in problems]
    samples.append({"task_id": problems[0].task_id, "completion": "def broken(:\n"})
    results = [
        {"task_id": problems[0].task_id, "completion_id": 0, "verdict": "passed"},
        {"task_id": problems[1].task_id, "completion_id": 0, "verdict": "sandbox_error"},
        {"task_id": problems[0].task_id, "completion_id": 1, "verdict": "syntax_error"},
    ]
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results))
    rows = rows_from_run(tmp_path, problems)
    assert rows == [
        {"prompt": problems[0].prompt, "program": problems[0].solutions[0], "verdict": "passed"},
        {"prompt": problems[0].prompt, "program": "def broken(:\n", "verdict": "syntax_error"},
    ]


def test_humaneval_rows_are_whole_programs_for_a_completion_and_for_an_evalplus_solution(humaneval_problems) -> None:
    from execrl.trainers.critic import rows_from_results

    problem = humaneval_problems[0]
    whole = problem.prompt + problem.solutions[0]
    samples = [
        {"task_id": problem.task_id, "completion": problem.solutions[0]},
        {"task_id": problem.task_id, "solution": whole},
    ]
    results = [{"task_id": problem.task_id, "completion_id": i, "verdict": "passed"} for i in range(2)]
    rows = rows_from_results([problem], samples, results)
    assert [row["program"] for row in rows] == [whole, whole], "a solution row is not given its prompt twice"


@pytest.mark.slow
def test_held_out_accuracy_beats_the_majority_class(
    tiny: Path, data_file: Path, labelled: list[dict[str, str]], tmp_path: Path
) -> None:
    assert {r["verdict"] for r in labelled} == set(CLASSES)  # the sandbox saw all four outcomes
    cfg = CriticConfig(model=str(tiny), data=data_file, out=tmp_path / "critic", eval_share=0.25, epochs=6, lr=2e-3)
    out = train_critic(cfg)
    metrics = json.loads((out / "critic_metrics.json").read_text())
    assert metrics["n_eval"] == 60
    assert metrics["critic/eval_accuracy"] >= metrics["critic/eval_majority_accuracy"] + 0.15
    rows = labelled[240:]  # problems the critic has not seen
    proba = Critic.load(out).predict_proba([r["prompt"] for r in rows], [r["program"] for r in rows])
    assert proba.shape == (40, len(CLASSES))
    assert proba.sum(axis=1) == pytest.approx([1.0] * 40, abs=1e-5)
    predicted = [CLASSES[i] for i in proba.argmax(axis=1)]
    assert sum(p == r["verdict"] for p, r in zip(predicted, rows, strict=True)) / len(rows) > 0.4


def test_cli_trains_a_critic_folder(tiny: Path, data_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "critic"
    argv = ["train", "critic", "--model", str(tiny), "--data", str(data_file), "--out", str(out), "--max-steps", "2"]
    assert execrl(argv) == 0
    metrics = json.loads((out / "critic_metrics.json").read_text())
    assert metrics["majority_class"] in CLASSES and "critic/eval_accuracy" in metrics


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"prompt": "p", "program": "x", "verdict": "great"}\n', "unknown verdict 'great'"),  # not a Verdict
        ('{"prompt": "p", "verdict": "passed"}\n', ":1: missing string field(s) program"),  # incomplete row
        ('{"prompt": "p", "program": "x", "verdict": "sandbox_error"}\n' * 3, "need at least 2 rows"),  # all dropped
    ],
    ids=["unknown-verdict", "missing-field", "only-sandbox-errors"],
)
def test_cli_refuses_bad_rows_with_a_clear_message(
    content: str, needle: str, tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(content)
    assert execrl(["train", "critic", "--model", str(tiny), "--data", str(path), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_train_critic_from_runs_labels_the_samples_of_an_evaluate_run_by_verdict(tiny, tmp_path, capsys) -> None:
    from tests.commands import command

    problems = load_synth("test", n=3)
    samples = []
    for p in problems:  # passed, failed or a runtime error, and a syntax error: each sample's own verdict
        samples += [{"task_id": p.task_id, "solution": s} for s in (p.solutions[0], p.metadata["wrong_solutions"][0])]
        samples.append({"task_id": p.task_id, "solution": "def broken(:\n"})
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    run = tmp_path / "run"
    flags = ["--benchmark", "synth", "--limit", "3", "--samples", str(tmp_path / "samples.jsonl"), "--workers", "1"]
    assert command("evaluate")([*flags, "--out", str(run)]) == 0
    verdicts = [json.loads(line)["verdict"] for line in (run / "results.jsonl").read_text().splitlines()]
    capsys.readouterr()

    out = tmp_path / "critic"
    argv = ["--from-runs", str(run), "--model", str(tiny), "--out", str(out), "--max-steps", "2", "--device", "cpu"]
    assert command("train", "critic")([*argv, "--batch-size", "4"]) == 0
    counts = {name: sum(CLASS_OF[v] == name for v in verdicts) for name in CLASSES}
    assert counts["passed"] == 3 and counts["syntax_error"] == 3
    shown = ", ".join(f"{name} {counts[name]}" for name in CLASSES)
    assert f"critic: 9 rows from 1 run folder(s): {shown}" in capsys.readouterr().err
    metrics = json.loads((out / "critic_metrics.json").read_text())
    assert metrics["n_train"] + metrics["n_eval"] == 9


def test_train_critic_needs_exactly_one_of_data_and_from_runs(tmp_path, capsys) -> None:
    from tests.commands import command

    assert command("train", "critic")(["--model", str(tmp_path), "--out", str(tmp_path / "c")]) == 2
    assert "give --data FILE or --from-runs RUN..., exactly one" in capsys.readouterr().err
