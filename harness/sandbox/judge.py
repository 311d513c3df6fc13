"""The judge: trusted benchmark test code run in the parent, calling into the sandboxed candidate.

Every name the candidate defines becomes a `Remote` proxy in the judge's namespace; using it is an
RPC to the child, and what comes back is plain data decoded into genuine builtins (or another
`Remote`, for objects of candidate classes). A `Remote` equals only itself, has no truth value and
supports no arithmetic, so the candidate cannot make the judge's own `assert` pass by anything but
returning the right plain value. Test code is split with `ast` so each test has its own outcome.
"""

from __future__ import annotations
import __future__

import ast
import builtins
import functools
import marshal
import re
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

from execrl.harness.records import Limits, TestOutcome, Verdict
from execrl.harness.sandbox import wire
from execrl.harness.sandbox.bounds import Abort, TrustedCodeAlarm, exception_text
from execrl.harness.sandbox.program import Child, ChildDied, ChildTimeout, OutputExceeded

# Rebuilt in the judge so test code can `except ValueError` as the benchmark intends. Not those that
# steer control flow: a candidate's StopIteration would silently end `map(candidate, ...)` in a check.
_CONTROL_FLOW = {"StopIteration", "StopAsyncIteration", "GeneratorExit"}
_BUILTIN_EXCEPTIONS = {
    name: obj for name, obj in vars(builtins).items()
    if isinstance(obj, type) and issubclass(obj, Exception) and obj.__module__ == "builtins"
    and name not in _CONTROL_FLOW
}  # fmt: skip


class CandidateError(Exception):
    """An exception the candidate raised whose type is not a builtin one."""


class Link:
    """The judge's connection to one child, with the current test's deadline."""

    def __init__(self, child: Child, limits: Limits, program_deadline: float) -> None:
        self.child = child
        self.limits = limits
        self.program_deadline = program_deadline
        self.deadline = program_deadline
        self.compared = 0
        """Times the test code compared a candidate object (`Remote`) with plain data (reward-hack telemetry:
        an opaque answer where the check expected data)."""
        self.exits = 0
        """Calls (or the load) the candidate answered with SystemExit instead of a value."""

    def start_test(self, timeout: float | None = None) -> None:
        """Start the next test's clock: `timeout` seconds (default `limits.timeout`), within the program's."""
        self.deadline = min(time.monotonic() + (timeout or self.limits.timeout), self.program_deadline)

    def stretched_by(self) -> float:
        """Seconds the current test's deadline has moved out so far, by the time the program waited for a CPU
        (`charged_time`: the child's waits end at the stretched deadline; the judge's own work on a reply must
        not end the test sooner)."""
        stretch = self.child.stretch
        return stretch.credit if stretch.deadline == self.deadline else 0.0

    def rpc(self, op: str, target: str | int, *args: Any, **kwargs: Any) -> Any:
        message: dict[str, Any] = {"op": op, "target": target, "args": self._encode(list(args))}
        if kwargs:
            message["kwargs"] = self._encode(kwargs)
        reply = self.send(message)
        self.note_exit(reply)
        if "ok" in reply:
            try:
                return wire.decode(reply["ok"], lambda h: Remote(self, h), self.deadline + self.stretched_by())
            except wire.WireTimeout:
                raise Abort(Verdict.TIMEOUT, f"no answer within {self.limits.timeout:g} s (decoding it)") from None
            except wire.WireError as exc:
                raise Abort(Verdict.RUNTIME_ERROR, f"the child sent a value the codec refuses: {exc}") from None
        raise remote_exception(reply)

    def send(self, message: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.child.request(message, self.deadline)
        except ChildTimeout:
            raise Abort(Verdict.TIMEOUT, f"no answer within {self.limits.timeout:g} s") from None
        except ChildDied as exc:
            raise Abort(Verdict.RUNTIME_ERROR, f"the program ended or crashed: {exc}") from None
        except OutputExceeded as exc:
            raise Abort(Verdict.OUTPUT_EXCEEDED, str(exc)) from None

    def note_exit(self, reply: dict[str, Any]) -> None:
        info = reply.get("exc")
        if type(info) is dict and info.get("type") == "SystemExit":
            self.exits += 1

    def _encode(self, value: Any) -> Any:
        def to_handle(obj: Any) -> int:
            if type(obj) is Remote:
                return obj._handle()
            raise wire.WireError(f"cannot pass a {type(obj).__name__} to the candidate")

        return wire.encode(value, to_handle)


def remote_exception(reply: dict[str, Any]) -> BaseException:
    """The judge-side exception for a child's `{"exc": ...}` reply (marked as the candidate's)."""
    info = reply.get("exc")
    if type(info) is not dict:
        return Abort(Verdict.RUNTIME_ERROR, "malformed reply from the child")
    name, message, tail = (_text(info.get(key)) for key in ("type", "message", "traceback"))
    if name == "MemoryError":
        return Abort(Verdict.MEMORY_EXCEEDED, f"MemoryError: {message}")
    cls = _BUILTIN_EXCEPTIONS.get(name, CandidateError)
    try:
        exc = cls(message)
    except Exception:  # noqa: BLE001 - e.g. UnicodeDecodeError needs 5 arguments
        exc = CandidateError(message)
    exc.execrl_remote = f"{name}: {message}\n{tail}"[-2000:]  # type: ignore[attr-defined]
    return exc


def _text(field: Any) -> str:
    """A field of the child's exception report: a string, cut short (the child may send anything)."""
    return field[:2000] if type(field) is str else ""


class Remote:
    """A candidate-defined object living in the child. Equal only to itself; its truth value is asked of the child."""

    __slots__ = ("_link", "_ref", "_id")

    def __init__(self, link: Link, ref: str | int) -> None:
        object.__setattr__(self, "_link", link)
        object.__setattr__(self, "_ref", ref)  # a global name in the child, or a handle id
        object.__setattr__(self, "_id", ref if type(ref) is int else None)

    def _handle(self) -> int:
        if self._id is None:  # a global name: ask the child for a handle to what it names
            value = self._link.rpc("resolve", self._ref)
            if type(value) is not Remote:
                raise wire.WireError(f"{self._ref!r} is not an object of the candidate")
            object.__setattr__(self, "_id", value._id)
        return self._id

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._link.rpc("call", self._ref, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._link.rpc("getattr", self._ref, name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._link.rpc("setattr", self._ref, name, value)

    def __getitem__(self, key: Any) -> Any:
        return self._link.rpc("getitem", self._ref, key)

    def __len__(self) -> int:
        # Capped: `tuple(remote)` and `list(remote)` preallocate len() slots in the judge before iterating
        # (a claimed 10**9 cost 8 GB and 17 s), and no reply can carry more than MAX_ITEMS items anyway.
        n = self._link.rpc("len", self._ref)
        if type(n) is not int or n < 0:
            raise TypeError("len() of a remote object must be a non-negative int")
        if n > wire.MAX_ITEMS:
            raise OverflowError(f"len() of a remote object above {wire.MAX_ITEMS}")
        return n

    def __iter__(self) -> Any:
        items = self._link.rpc("list", self._ref)
        return iter(items) if type(items) is list else iter(())

    def __contains__(self, item: Any) -> bool:
        return self._link.rpc("contains", self._ref, item) is True

    def __bool__(self) -> bool:
        # `assert f(x)` on e.g. a re.Match (MBPP 737, 787, 794). The child may claim any truth value, but
        # that gains nothing: returning True itself would pass such a test the same way.
        value = self._link.rpc("bool", self._ref)
        if type(value) is not bool:
            raise TypeError("the truth value of a candidate object must come back as a bool")
        return value

    def __eq__(self, other: object) -> bool:
        if type(other) is not Remote:
            self._link.compared += 1
        return self is other

    def __ne__(self, other: object) -> bool:
        if type(other) is not Remote:
            self._link.compared += 1
        return self is not other

    def __hash__(self) -> int:
        return object.__hash__(self)

    def __repr__(self) -> str:
        return f"<candidate object {self._ref!r}>"


def split_check(check_code: str, entry: str = "check") -> tuple[str, list[str]]:
    """HumanEval's `test` code as (module code without `check`, one source per test of `check`).

    Each top-level statement of `check`'s body that names the candidate is one test, so a failing assert fails
    only itself; the statements that do not (imports, set-up, `assert True, "This prints if ..."`) run with
    the test after them (trailing ones with the last). Found by a red-team review: as tests of their own they
    passed for any program, so `return None` earned 4 of 5 tests of HumanEval/32 (a partial-credit reward of
    +0.74 of 1), and some of 42 of the 164 problems.
    """
    module_code, tests = _split_check(check_code, entry)
    return module_code, list(tests)


@functools.lru_cache(maxsize=1024)
def _split_check(check_code: str, entry: str) -> tuple[str, tuple[str, ...]]:
    # Every sample of a problem runs the same test code; ast.unparse is most of the judge's own CPU.
    module = ast.parse(check_code)
    rest, tests = [], []
    for node in module.body:
        if isinstance(node, ast.FunctionDef) and node.name == entry and not tests:
            param = node.args.args[0].arg if node.args.args else "candidate"
            tests = _tests_naming(node.body, param)
            tests = [f"{param} = candidate\n{t}" if param != "candidate" else t for t in tests]
        else:
            rest.append(ast.unparse(node))
    if not tests:
        raise ValueError(f"test code defines no {entry}() function")
    return "\n".join(rest), tuple(tests)


def _tests_naming(body: list[ast.stmt], param: str) -> list[str]:
    """`body`'s statements grouped into tests: each statement that names `param` ends one (see `split_check`)."""
    tests: list[str] = []
    pending: list[str] = []
    for stmt in body:
        pending.append(ast.unparse(stmt))
        if any(isinstance(n, ast.Name) and n.id == param for n in ast.walk(stmt)):
            tests.append("\n".join(pending))
            pending = []
    if pending and tests:
        tests[-1] += "\n" + "\n".join(pending)
    elif pending:  # no statement names the candidate: one test of them all
        tests.append("\n".join(pending))
    return tests


@functools.lru_cache(maxsize=4096)
def _compiled(source: str, filename: str) -> Any:
    """Trusted test code compiled once and reused (a code object is immutable; each run gets its own
    namespace)."""
    return compile(source, filename, "exec")


@functools.lru_cache(maxsize=4096)
def _is_assert(source: str) -> bool:
    return isinstance(ast.parse(source).body[-1], ast.Assert)


def defined_names(program: str) -> set[str]:
    """Names a program binds at module level by `def`, `class` or assignment (not by import).

    A program that compiles may still be too deep for `ast.parse` (thousands of nested operators): a
    RecursionError here would become a sandbox_error, which earns no penalty. Such programs are read line
    by line instead (`_top_level_names`).
    """
    try:
        tree = ast.parse(program)
    except (RecursionError, MemoryError):
        return _top_level_names(program)
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


_TOP_LEVEL_BINDING = re.compile(r"(?:async\s+def|def|class)\s+(\w+)|(\w+)\s*(?::[^=]*)?=(?!=)")


def _top_level_names(program: str) -> set[str]:
    """`def`, `class` and simple assignments that start a line at column 0 (the fallback of `defined_names`)."""
    names = set()
    for line in program.splitlines():
        match = _TOP_LEVEL_BINDING.match(line)
        if match:
            names.add(match.group(1) or match.group(2))
    return names


def referenced_names(sources: list[str]) -> set[str]:
    return set().union(*(_names_in(src) for src in sources))


@functools.lru_cache(maxsize=4096)
def _names_in(source: str) -> frozenset[str]:
    return frozenset(n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name))


def run_tests(
    link: Link, namespace: dict[str, Any], tests: list[str], alarm: TrustedCodeAlarm | None = None
) -> list[TestOutcome]:
    """Run each test source in `namespace` (stopped by `alarm` past each test's deadline); a failing assert
    continues, an Abort or a crash outside an assert fails the rest (they share state, as in one `check()`
    call)."""
    outcomes: list[TestOutcome] = []
    for i, source in enumerate(tests):
        link.start_test()
        start = time.monotonic()
        verdict, error, fatal = _run_one(source, namespace, i, alarm, link.deadline, link.stretched_by)
        outcomes.append(TestOutcome(verdict, time.monotonic() - start, error))
        if fatal:
            rest = f"not run: an earlier test ended the run ({verdict.value})"
            outcomes += [TestOutcome(verdict, 0.0, rest) for _ in tests[i + 1 :]]
            break
    return outcomes


def _run_one(
    source: str,
    namespace: dict[str, Any],
    index: int,
    alarm: TrustedCodeAlarm | None,
    deadline: float,
    stretched_by: Callable[[], float] | None = None,
) -> tuple[Verdict, str, bool]:
    is_assert = _is_assert(source)
    try:
        if alarm is not None:
            alarm.arm(deadline, stretched_by)
        try:
            exec(_compiled(source, f"<test {index}>"), namespace)
        finally:
            if alarm is not None:
                alarm.disarm()
    except Abort as exc:
        return exc.verdict, exc.error, True
    except Exception as exc:  # noqa: BLE001 - trusted test code; any error fails this test
        remote = hasattr(exc, "execrl_remote")
        verdict = Verdict.RUNTIME_ERROR if remote else Verdict.FAILED
        return verdict, _error_text(exc, source), not is_assert
    return Verdict.PASSED, "", False


def _error_text(exc: BaseException, source: str) -> str:
    remote = getattr(exc, "execrl_remote", "")
    return (remote or f"{exception_text(exc)} in: {source.strip()[:300]}")[-2000:]


def compiled_program(program: str) -> bytes:
    """The candidate program compiled and marshalled; raises SyntaxError and friends. Cached, so the
    syntax check and the load share one compile.

    Annotations are postponed (PEP 563), as they always were for candidates: LeetCode-style APPS
    solutions annotate with `List` without importing it (APPS's own runner prepends the import).
    """
    return _compiled_program(program)


@functools.lru_cache(maxsize=16)
def _compiled_program(program: str) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the candidate's SyntaxWarnings are not ours to print
        code = compile(program, "<candidate>", "exec", flags=__future__.annotations.compiler_flag, dont_inherit=True)
    return marshal.dumps(code)


def load_request(program: str, module_name: str) -> dict[str, Any]:
    """The child's `load` request. The code travels compiled: unmarshalling costs the child a
    fraction of a compile in CPU and copy-on-write faults. Marshal data only ever flows judge ->
    child; nothing the child sends is unmarshalled."""
    return {"op": "load", "code": wire.encode(compiled_program(program)), "name": module_name}


def load_program(link: Link, program: str, module_name: str) -> None:
    """Run the candidate program in the child (raises Abort, or the candidate's exception)."""
    reply = link.send(load_request(program, module_name))
    link.note_exit(reply)
    if "exc" in reply:
        raise remote_exception(reply)


def judge_asserts(
    link: Link, program: str, tests: list[str], build_namespace: Callable[[Link], dict[str, Any]]
) -> list[TestOutcome]:
    """Load the program in the child, build the judge's namespace, run each test in it."""
    link.start_test()
    try:
        load_program(link, program, "__candidate__")
    except Abort as exc:
        return [TestOutcome(exc.verdict, 0.0, exc.error) for _ in tests]
    except Exception as exc:  # noqa: BLE001 - the candidate's own exception at load time
        return [TestOutcome(Verdict.RUNTIME_ERROR, 0.0, _error_text(exc, "")) for _ in tests]
    with TrustedCodeAlarm() as alarm:
        try:
            alarm.arm(link.deadline, link.stretched_by)
            try:
                namespace = build_namespace(link)
            finally:
                alarm.disarm()
        except Abort as exc:
            return [TestOutcome(exc.verdict, 0.0, exc.error) for _ in tests]
        except Exception as exc:  # noqa: BLE001 - setup code failed on the candidate's names or values
            verdict = Verdict.RUNTIME_ERROR if hasattr(exc, "execrl_remote") else Verdict.FAILED
            return [TestOutcome(verdict, 0.0, _error_text(exc, "test setup")) for _ in tests]
        return run_tests(link, namespace, tests, alarm)


def humaneval_namespace(prompt: str, entry_point: str, module_code: str) -> Callable[[Link], dict[str, Any]]:
    """The trusted prompt (helpers such as `encode_cyclic`), then the entry point as a Remote,
    then the test module's own top-level code (imports, METADATA)."""

    def build(link: Link) -> dict[str, Any]:
        namespace: dict[str, Any] = {"__name__": "__judge__", "__builtins__": builtins}
        try:
            code = _compiled(prompt, "<prompt>")
        except SyntaxError:  # a prompt that ends at the signature, without a docstring
            code = _compiled(prompt + "    pass\n", "<prompt>")
        exec(code, namespace)
        namespace[entry_point] = namespace["candidate"] = Remote(link, entry_point)
        exec(_compiled(module_code, "<test module>"), namespace)
        return namespace

    return build


def mbpp_namespace(
    program: str, setup: str, tests: list[str], entry_point: str | None
) -> Callable[[Link], dict[str, Any]]:
    """Candidate-defined names the tests use become Remotes; builtins and stdlib modules the tests
    use stay the judge's own (a candidate `def abs` or `import math` cannot stand in for them),
    except the entry point itself (MBPP 126 asks for a function named `sum`); then the trusted
    setup code runs."""
    used = referenced_names([setup, *tests])
    names = defined_names(program)
    remote = (names & used) - set(vars(builtins)) - set(sys.stdlib_module_names)
    if entry_point and entry_point in names:
        remote.add(entry_point)
    modules = (used & set(sys.stdlib_module_names)) - set(vars(builtins))

    def build(link: Link) -> dict[str, Any]:
        namespace: dict[str, Any] = {"__name__": "__judge__", "__builtins__": builtins}
        for name in sorted(modules):
            try:
                namespace[name] = __import__(name)
            except ImportError:
                pass
        namespace.update({name: Remote(link, name) for name in remote})
        exec(_compiled(setup, "<test setup>"), namespace)
        return namespace

    return build
