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


def test_split_check_makes_one_test_per_statement_of_checks_body() -> None:
    module, tests = split_check(CHECK)
    assert len(tests) == 4
    assert tests[0].strip() == "assert candidate(1) == 2"
    assert tests[2].startswith("for x in xs:")
    assert "METADATA" in module and "import math" in module and "def check" not in module


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
