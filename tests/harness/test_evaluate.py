"""The evaluate stage end to end: outputs, resume after SIGKILL, refusals and bad input.

Most tests swap the sandbox for a scripted stand-in executor: a completion's text says how it ends
(SYNTAX, FAIL, SLEEP, else passed) and every execution is logged to a counter file, so the tests can see
exactly which samples ran. One test kills and resumes a run on the real sandbox.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from execrl.harness.records import ExecResult, Limits, TestOutcome, Verdict

from tests.builders import call_problem
from tests.commands import command, evaluate_flags

main = command("evaluate")

ROOT = Path(__file__).resolve().parents[2]
COUNTER_ENV = "EXECRL_TEST_EXEC_LOG"


def _standin_execute(problem, program: str, limits: Limits = Limits(), *, slot: int = 0) -> ExecResult:
    with open(os.environ[COUNTER_ENV], "a") as log:
        log.write(program.splitlines()[-1] + "\n")
    if "SLEEP" in program:
        time.sleep(0.1)
    verdict = Verdict.SYNTAX_ERROR if "SYNTAX" in program else Verdict.FAILED if "FAIL" in program else Verdict.PASSED
    return ExecResult(verdict, tests=[TestOutcome(verdict)])


def install_standin(degraded: bool = False) -> None:
    fake = types.ModuleType("execrl.harness.sandbox.executor")
    fake.execute = _standin_execute
    fake.prepare_worker = lambda slot, hidden=(): {"net": True, "pid": not degraded}
    sys.modules["execrl.harness.sandbox.executor"] = fake
    import execrl.harness.sandbox as sandbox

    sandbox.executor = fake  # `from execrl.harness.sandbox import executor` reads the package attribute first


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    log = tmp_path / "executions.log"
    log.touch()
    monkeypatch.setenv(COUNTER_ENV, str(log))
    import execrl.harness.sandbox as sandbox

    monkeypatch.setitem(sys.modules, "execrl.harness.sandbox.executor", None)  # both restored after the test
    monkeypatch.setattr(sandbox, "executor", None, raising=False)
    install_standin(degraded=True)
    return log


def _write_samples(path: Path, completions: dict[int, list[str]]) -> Path:
    with open(path, "w") as f:
        for task, texts in completions.items():
            for i, text in enumerate(texts):
                # The last line names the sample, so the execution log says which one ran.
                row = {"task_id": f"HumanEval/{task}", "completion": f"    pass\n# {text} {task}.{i}"}
                f.write(json.dumps(row) + "\n")
    return path


def _result_keys(out: Path) -> list[tuple[str, int, str]]:
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return sorted((r["task_id"], r["completion_id"], r["verdict"]) for r in rows)


def test_writes_results_metrics_and_config_and_warns_when_isolation_is_degraded(
    standin: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    samples = _write_samples(tmp_path / "s.jsonl", {0: ["ok", "FAIL", "ok", "ok"], 1: ["SYNTAX", "FAIL", "ok", "ok"]})
    out = tmp_path / "run"
    assert main(evaluate_flags(samples, out, "--workers", "2", "--k", "1,2,10")) == 0
    err = capsys.readouterr().err
    assert "ISOLATION DEGRADED: pid" in err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_samples"] == 8 and metrics["n_problems"] == 2
    assert metrics["metrics"]["pass@1"] == pytest.approx((3 / 4 + 2 / 4) / 2)
    assert "pass@10" not in metrics["metrics"]
    assert metrics["metrics"]["syntax_rate"] == pytest.approx(7 / 8)
    assert metrics["degraded"] == ["pid"] and metrics["isolation"] == {"net": True, "pid": False}
    assert json.loads((out / "config.json").read_text())["evaluate"]["benchmark"] == "humaneval"
    assert len(_result_keys(out)) == 8


def test_rerun_on_a_finished_folder_executes_nothing(standin: Path, tmp_path: Path) -> None:
    samples = _write_samples(tmp_path / "s.jsonl", {0: ["ok", "FAIL"]})
    args = evaluate_flags(samples, tmp_path / "run", "--workers", "1")
    assert main(args) == 0
    ran = len(standin.read_text().splitlines())
    assert main(args) == 0
    assert len(standin.read_text().splitlines()) == ran == 2


def _cli(samples: Path, out: Path) -> list[str]:
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); from tests.harness.test_evaluate import install_standin; "
        "install_standin(); from execrl.harness.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    return [sys.executable, "-c", code, "evaluate", *evaluate_flags(samples, out, "--workers", "1")]


def _kill_once_written(cli: list[str], results: Path, lines: int, within: float) -> None:
    """Start `cli` in a session of its own; SIGKILL the whole session once `results` holds `lines` lines."""
    proc = subprocess.Popen(cli, cwd=ROOT, start_new_session=True, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + within
    while not (results.exists() and len(results.read_bytes().splitlines()) >= lines):
        assert time.monotonic() < deadline and proc.poll() is None, "evaluate finished or stalled before the kill"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_runs_only_the_missing_samples(standin: Path, tmp_path: Path) -> None:
    samples = _write_samples(tmp_path / "s.jsonl", {t: ["SLEEP", "SLEEP FAIL"] * 5 for t in range(4)})
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    results = killed / "results.jsonl"
    _kill_once_written(_cli(samples, killed), results, lines=10, within=60)
    with open(results, "ab") as f:
        f.write(b'{"task_id": "HumanEval/3", "compl')  # a torn last line, as a kill mid-write leaves
    kept = sum(1 for line in results.read_bytes().splitlines() if line.endswith(b"}"))
    assert 10 <= kept < 40

    before = len(standin.read_text().splitlines())
    assert subprocess.run(_cli(samples, killed), stderr=subprocess.DEVNULL).returncode == 0
    rerun = len(standin.read_text().splitlines()) - before
    assert rerun == 40 - kept, "the rerun executed exactly the samples missing from results.jsonl"

    assert subprocess.run(_cli(samples, clean), stderr=subprocess.DEVNULL).returncode == 0
    assert _result_keys(killed) == _result_keys(clean)
    assert (
        json.loads((killed / "metrics.json").read_text())["metrics"]
        == json.loads((clean / "metrics.json").read_text())["metrics"]
    )


BAD = [
    (b'{"task_id": "HumanEval/0", "completion": "x"}\n{"task_id": \n', "s.jsonl:2: malformed JSON"),
    (b'{"task_id": "HumanEval/999", "completion": "x"}\n', "s.jsonl:1: unknown task_id 'HumanEval/999'"),
    (b'{"task_id": "HumanEval/0", "completion": "\xe9t\xe9"}\n', "s.jsonl:1: not UTF-8"),
]


@pytest.mark.parametrize(("content", "message"), BAD, ids=["malformed line 2", "unknown task id", "latin-1 bytes"])
def test_bad_samples_exit_2_naming_file_and_line(
    standin: Path, tmp_path: Path, capsys: pytest.CaptureFixture, content: bytes, message: str
) -> None:
    (tmp_path / "s.jsonl").write_bytes(content)
    code = main(evaluate_flags(tmp_path / "s.jsonl", tmp_path / "o"))
    assert code == 2
    assert message in capsys.readouterr().err


def test_skip_bad_runs_the_good_lines_and_counts_the_bad(standin: Path, tmp_path: Path) -> None:
    good = json.dumps({"task_id": "HumanEval/0", "completion": "    pass\n# ok"}).encode()
    (tmp_path / "s.jsonl").write_bytes(good + b"\nnot json\n" + b'{"task_id": "HumanEval/0"}\n')
    out = tmp_path / "o"
    assert main(evaluate_flags(tmp_path / "s.jsonl", out, "--skip-bad", "--workers", "1")) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["skipped_lines"] == 2 and metrics["n_samples"] == 1


def test_a_folder_of_other_samples_is_refused_until_force(
    standin: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    first = _write_samples(tmp_path / "a.jsonl", {0: ["ok"]})
    second = _write_samples(tmp_path / "b.jsonl", {0: ["FAIL"]})
    out = tmp_path / "run"
    assert main(evaluate_flags(first, out, "--workers", "1")) == 0
    args = evaluate_flags(second, out, "--workers", "1")
    assert main(args) == 2
    assert "--force" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    assert _result_keys(out) == [("HumanEval/0", 0, "failed")]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--k", "1,x"], "--k must be comma-separated integers"),
        (["--workers", "0"], "--workers must be >= 1"),
        (["--benchmark", "nope"], "'--benchmark'"),
        (["--sandbox", "chroot"], "'--sandbox'"),
        (["--backend", "subprocess"], "--backend was renamed: use --sandbox"),
        (["--backend=docker"], "--backend was renamed: use --sandbox"),
    ],
    ids=["non-integer k", "zero workers", "unknown benchmark", "unknown sandbox", "old flag name", "old flag name ="],
)
def test_bad_flags_exit_2_naming_the_flag(
    standin: Path, tmp_path: Path, capsys: pytest.CaptureFixture, flags: list[str], message: str
) -> None:
    samples = _write_samples(tmp_path / "s.jsonl", {0: ["ok"]})
    args = evaluate_flags(samples, tmp_path / "o", *flags)
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_missing_samples_file_is_named(standin: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(evaluate_flags(tmp_path / "none.jsonl", tmp_path)) == 2
    assert "none.jsonl does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_sigkill_on_the_real_sandbox_keeps_written_results_and_resume_adds_only_the_missing(
    tmp_path: Path, humaneval_problems
) -> None:
    # Canonical solutions that pause 0.2 s at load time, so the run is still going when it is killed.
    rows = [
        {"task_id": p.task_id, "completion": p.solutions[0] + "\nimport time\ntime.sleep(0.2)\n"}
        for p in humaneval_problems[:12]
        for _ in range(3)
    ]
    samples = tmp_path / "s.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    cli = [
        sys.executable,
        "-m",
        "execrl.harness.cli",
        "evaluate",
        *evaluate_flags(samples, out, "--workers", "2", "--k", "1"),
    ]
    results = out / "results.jsonl"
    _kill_once_written(cli, results, lines=6, within=120)
    kept = [line for line in results.read_bytes().splitlines(keepends=True) if line.endswith(b"}\n")]
    assert 6 <= len(kept) < len(rows)

    assert subprocess.run(cli, cwd=ROOT, stderr=subprocess.DEVNULL, timeout=300).returncode == 0
    final = results.read_bytes().splitlines(keepends=True)
    assert final[: len(kept)] == kept, "lines written before the kill were kept as they were, not recomputed"
    keys = [(json.loads(line)["task_id"], json.loads(line)["completion_id"]) for line in final]
    assert len(keys) == len(set(keys)) == len(rows), "each sample ran exactly once across both runs"
    assert all(json.loads(line)["passed"] for line in final)
    assert json.loads((out / "metrics.json").read_text())["metrics"]["pass@1"] == 1.0


def test_timeouts_calibrated_on_the_reference_let_a_slow_honest_program_pass(tmp_path: Path) -> None:
    # A reference that takes ~0.3 s per call: a fixed 0.1 s timeout fails an equally slow sample, the
    # evalplus-style calibration (max(floor, 4 x reference)) passes it and keeps the figure in timeouts.json.
    from execrl.harness.evaluate import evaluate

    slow = "import time\ndef f(x):\n    time.sleep(0.3)\n    return x + 1\n"
    problem = call_problem("synth/slow", "f", [[1]], [2], solutions=(slow,))
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"task_id": "synth/slow", "solution": slow}) + "\n")
    limits = Limits(timeout=0.1, retry_timeouts=False)
    fixed = evaluate([problem], samples, tmp_path / "fixed", limits=limits, workers=1, ks=(1,), progress=False)
    calibrated = evaluate(
        [problem],
        samples,
        tmp_path / "calibrated",
        limits=limits,
        workers=1,
        ks=(1,),
        progress=False,
        timeout_factor=4.0,
        timeout_floor=0.05,
    )
    assert fixed["verdicts"]["timeout"] == 1
    assert calibrated["verdicts"]["passed"] == 1
    timeouts = json.loads((tmp_path / "calibrated" / "timeouts.json").read_text())
    assert 4 * 0.3 <= timeouts["synth/slow"] < 4 * 2.0


def test_calibration_floors_fast_references_skips_failing_ones_and_reuses_timeouts_json(tmp_path: Path) -> None:
    # The live calibration (evaluate's, the only one): max(floor, factor x slowest test of the reference);
    # a problem whose reference fails or that has none keeps the default; timeouts.json is read back, not redone.
    from execrl.benchmarks.problem import Problem
    from execrl.harness.evaluate import _calibrated_timeouts
    from execrl.harness.sandbox.pool import SandboxPool

    def problem(task_id: str, solutions: tuple[str, ...]) -> Problem:
        return call_problem(task_id, "f", [[1]], [2], solutions=solutions)

    fast = problem("synth/fast", ("def f(x):\n    return x + 1\n",))
    wrong = problem("synth/wrong", ("def f(x):\n    return x\n",))
    bare = problem("synth/bare", ())
    kept = problem("synth/kept", ("def f(x):\n    return x + 1\n",))
    path = tmp_path / "timeouts.json"
    path.write_text(json.dumps({"synth/kept": 7.5}))
    with SandboxPool(1, Limits()) as pool:
        timeouts = _calibrated_timeouts(pool, [fast, wrong, bare, kept], path, 4.0, 0.5, progress=False)
    assert timeouts == {"synth/fast": 0.5, "synth/kept": 7.5}
    assert json.loads(path.read_text()) == timeouts


def test_a_problem_file_is_evaluated_by_its_own_tests_with_task_ids_as_written(tmp_path: Path) -> None:
    from tests.commands import command

    rows = [
        {"task_id": "mine/add", "prompt": "def add(a, b):\n", "completion": "body", "entry_point": "add",
         "tests": ["assert add(1, 2) == 3", "assert add(2, 2) == 4"]},
        {"task_id": "Mine 2", "prompt": "Print it twice.", "stdio": [{"input": "a\n", "output": "a\na\n"}]},
    ]  # fmt: skip
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps(r) + "\n" for r in rows))
    samples = tmp_path / "samples.jsonl"
    samples.write_text(
        json.dumps({"task_id": "mine/add", "completion": "    return a + b\n"}) + "\n"  # a body: after the prompt
        + json.dumps({"task_id": "mine/add", "completion": "    return 3\n"}) + "\n"  # passes one assert of two
        + json.dumps({"task_id": "Mine 2", "completion": "s = input()\nprint(s)\nprint(s)\n"}) + "\n"
    )  # fmt: skip
    out = tmp_path / "run"
    argv = ["--problems", str(problems), "--samples", str(samples), "--out", str(out), "--workers", "1"]
    assert command("evaluate")(argv) == 0
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    outcomes = {(r["task_id"], r["completion_id"]): [t["verdict"] for t in r["tests"]] for r in results}
    assert outcomes == {
        ("mine/add", 0): ["passed", "passed"],
        ("mine/add", 1): ["passed", "failed"],
        ("Mine 2", 0): ["passed"],
    }
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["benchmark"] == "problems" and metrics["n_problems"] == 2
