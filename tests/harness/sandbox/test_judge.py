"""Judge helpers: splitting HumanEval's check() into tests, the names a program defines and uses."""

from __future__ import annotations

import textwrap

import pytest
from execrl.harness.sandbox.judge import defined_names, referenced_names, split_check

CHECK = textwrap.dedent("""
    METADATA = {'author': 'x'}
    import math

    def check(candidate):
        assert candidate(1) == 2
        xs = [1, 2]
        for x in xs:
            assert candidate(x) > 0
        assert math.isclose(candidate(0.5), 1.0)
""")


def test_split_check_makes_one_test_per_statement_of_checks_body_that_names_the_candidate() -> None:
    module, tests = split_check(CHECK)
    assert len(tests) == 3
    assert tests[0].strip() == "assert candidate(1) == 2"
    assert tests[1].startswith("xs = [1, 2]\nfor x in xs:")  # set-up runs with the test after it
    assert "METADATA" in module and "import math" in module and "def check" not in module


FREE_STATEMENTS = [
    # (id, check body, tests) - found by a red-team review: each statement was a test of its own, passed by
    # any program (HumanEval/32, /38, /50, /64, /66, ...: 42 of the 164 problems)
    ("imports-and-set-up-before", "import random\nrng = random.Random(42)\nassert candidate(rng.random()) == 1\n", 1),
    (
        "assert-true-between",
        "assert candidate(1) == 2\nassert True, 'This prints if this assert fails'\nassert candidate(2) == 3\n",
        2,
    ),
    ("trailing-assert-true", "assert candidate(1) == 2\nassert True\n", 1),
    ("nothing-names-it", "assert True\nx = 1\n", 1),
]


@pytest.mark.parametrize(("body", "n"), [row[1:] for row in FREE_STATEMENTS], ids=[row[0] for row in FREE_STATEMENTS])
def test_statements_that_do_not_name_the_candidate_are_no_test_of_their_own(body: str, n: int) -> None:
    _, tests = split_check("def check(candidate):\n" + textwrap.indent(body, "    "))
    assert len(tests) == n
    assert all("candidate" in t for t in tests) or n == 1 and "candidate" not in body
    assert "".join(tests).count("assert") == body.count("assert")  # every statement still runs, once


def test_split_check_renames_a_differently_named_parameter_to_candidate() -> None:
    _, tests = split_check("def check(f):\n    assert f(1) == 1\n")
    namespace = {"candidate": lambda x: x}
    exec(tests[0], namespace)  # would raise NameError if `f` were not bound
    namespace["candidate"] = lambda x: x + 1
    with pytest.raises(AssertionError):
        exec(tests[0], namespace)


def test_split_check_refuses_test_code_without_check() -> None:
    with pytest.raises(ValueError, match="check"):
        split_check("def test():\n    pass\n")


DEFINED = [
    ("functions and classes", "def f(): pass\nclass C: pass\n", {"f", "C"}),
    ("assignments including tuple targets", "a = 1\nb, (c, d) = 1, (2, 3)\nx: int = 3\n", {"a", "b", "c", "d", "x"}),
    ("imports are not definitions", "import math\nfrom os import path\n", set()),
    ("names bound inside functions are not top level", "def f():\n    y = 1\n", {"f"}),
]


@pytest.mark.parametrize(("program", "names"), [r[1:] for r in DEFINED], ids=[r[0] for r in DEFINED])
def test_defined_names_are_the_module_level_bindings_other_than_imports(program, names) -> None:
    assert defined_names(program) == names


def test_referenced_names_collects_names_across_sources() -> None:
    assert referenced_names(["assert f(x) == 1", "root = Node(2)"]) >= {"f", "x", "root", "Node"}


def test_a_program_too_deep_for_ast_parse_still_has_its_names_read(monkeypatch) -> None:
    """Found by a red-team review: `x = ---...1` (~3,000 deep) compiles, but ast.parse raises RecursionError
    (the window depends on the stack), which became a sandbox_error (no penalty) on MBPP. The names then
    come from a line scan."""
    from execrl.harness.sandbox import judge

    program = "def add(a, b):\n    return a - b\nasync def g():\n    pass\nclass K:\n    y = 1\nx: int = 2\nz == 3\n"
    expected = judge.defined_names(program)

    def too_deep(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded during ast construction")

    monkeypatch.setattr(judge.ast, "parse", too_deep)
    assert judge.defined_names(program) == expected == {"add", "g", "K", "x"}


EXCEPTION_TEXTS = [
    ("a string message is shown as it is", ValueError("bad input"), "ValueError: bad input"),
    ("no message", AssertionError(), "AssertionError: "),
    ("a 5,000-digit int key: str(KeyError) would raise ValueError", KeyError(10**5000),
     "KeyError: <int of 16610 bits>"),
    ("a key that is a million-item tuple is cut short", KeyError(tuple(range(10**6))),
     "KeyError: (0, 1, 2, 3, 4, 5, ...)"),
]  # fmt: skip


@pytest.mark.parametrize(("exc", "text"), [r[1:] for r in EXCEPTION_TEXTS], ids=[r[0] for r in EXCEPTION_TEXTS])
def test_exception_text_is_bounded_and_never_raises(exc, text) -> None:
    """Found by a red-team review: `str(KeyError(10**5000))` raised in the judge's error path, and the run
    became a sandbox_error (no penalty for the policy)."""
    from execrl.harness.sandbox.bounds import exception_text

    assert exception_text(exc) == text


def test_exception_text_of_an_exception_whose_str_raises_is_a_placeholder() -> None:
    from execrl.harness.sandbox.bounds import exception_text

    class Broken(Exception):
        def __str__(self) -> str:
            raise RuntimeError

    assert exception_text(Broken("a", 1)) == "Broken: 'a', 1"  # non-string arguments: a bounded repr
    assert exception_text(Broken("a")) == "Broken: (message not shown)"


class FakeLink:
    """Answers a Remote's RPCs from a table, as a child would."""

    def __init__(self, answers: dict[str, object]) -> None:
        self.answers = answers

    def rpc(self, op: str, target: object, *args: object) -> object:
        return self.answers[op]


def test_a_remote_claiming_more_items_than_a_reply_can_carry_is_refused_before_tuple_preallocates() -> None:
    """Found by a red-team review: `tuple(remote)` asks len() first and preallocates that many slots; a claimed
    10**9 cost the judge 8 GB and 17 s."""
    import time

    from execrl.harness.sandbox import wire
    from execrl.harness.sandbox.judge import Remote

    honest = Remote(FakeLink({"len": 3, "list": [1, 2, 3]}), "r")
    assert tuple(honest) == (1, 2, 3) and len(honest) == 3
    lying = Remote(FakeLink({"len": wire.MAX_ITEMS * 5, "list": [0]}), "r")
    start = time.perf_counter()
    with pytest.raises(OverflowError):
        tuple(lying)
    with pytest.raises(OverflowError):
        len(lying)
    assert time.perf_counter() - start < 1.0
    with pytest.raises(TypeError):
        len(Remote(FakeLink({"len": -1}), "r"))


def test_an_exception_report_with_fields_that_are_not_strings_is_still_the_candidates_error() -> None:
    from execrl.harness.sandbox.judge import remote_exception

    exc = remote_exception({"exc": {"type": list(range(10**5)), "message": {"a": 1}, "traceback": 7}})
    assert exc.execrl_remote == ": \n"  # type: ignore[attr-defined]
    exc = remote_exception({"exc": {"type": "ValueError", "message": "x" * 10**6}})
    assert type(exc) is ValueError and len(exc.execrl_remote) <= 2000  # type: ignore[attr-defined]


def test_test_code_running_past_the_deadline_on_the_candidates_data_is_a_timeout() -> None:
    """Found by a red-team review: `for _ in range(candidate(x))` with a returned 10**15 hung the judge until the
    pool killed the worker (a sandbox_error). The alarm ends it as a timeout and leaves no timer behind."""
    import signal
    import time

    from execrl.harness.records import Verdict
    from execrl.harness.sandbox import bounds

    previous = signal.getsignal(signal.SIGALRM)
    start = time.monotonic()
    with pytest.raises(bounds.Abort) as caught:
        with bounds.TrustedCodeAlarm() as alarm:
            alarm.arm(start + 0.1)
            for _ in range(10**15):
                pass
    assert caught.value.verdict is Verdict.TIMEOUT
    assert time.monotonic() - start < 0.1 + bounds.ALARM_GRACE + 1.0
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is previous
    with bounds.TrustedCodeAlarm() as alarm:
        for _ in range(3):  # in time: nothing happens
            alarm.arm(time.monotonic() + 5)
            sum(range(1000))
            alarm.disarm()
            assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        assert signal.getsignal(signal.SIGALRM) is not previous
    assert signal.getsignal(signal.SIGALRM) is previous


def test_outside_the_main_thread_the_test_code_runs_without_the_alarm() -> None:
    import threading
    import time

    from execrl.harness.sandbox import bounds

    errors: list[BaseException] = []

    def run() -> None:
        try:
            with bounds.TrustedCodeAlarm() as alarm:
                alarm.arm(time.monotonic() - 1)
                time.sleep(bounds.ALARM_GRACE + 0.2)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert errors == []


def test_the_alarm_follows_the_deadline_as_load_stretches_it_and_a_late_ring_sets_no_timer() -> None:
    """Found by a red-team review: the alarm rang ALARM_GRACE after the test's own deadline, even when load had
    stretched that deadline (`charged_time`), so a test the child was still entitled to was a timeout."""
    import signal
    import time

    from execrl.harness.sandbox import bounds

    start = time.monotonic()
    with pytest.raises(bounds.Abort):
        with bounds.TrustedCodeAlarm() as alarm:
            alarm.arm(start - bounds.ALARM_GRACE, lambda: 0.3)  # due at once, but the deadline moved out 0.3 s
            for _ in range(10**15):
                pass
    assert 0.3 <= time.monotonic() - start < 0.3 + 1.0
    with bounds.TrustedCodeAlarm() as alarm:
        alarm.arm(time.monotonic() + 5, lambda: 10.0)
        alarm.disarm()
        alarm._ring(signal.SIGALRM, None)  # a ring already on its way when the test ended
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
