"""Property-based fuzzing of the judge (Hypothesis): generated replies (wire values and raw frames), programs
and stdout against the judge's invariants.

- Decoding never raises anything but `WireError`, and stays fast whatever the value hides.
- A wrong answer is never `passed`, and never `sandbox_error` (which earns the policy no penalty).
- The judge's time per reply is bounded.

The default suite runs a small fixed budget (derandomized: the same examples every run); the long run is
`tests/perf/fuzz_judge.py --minutes 10`, which reuses these properties with fresh seeds.
"""

from __future__ import annotations

import json
import math
import textwrap
import time
from collections.abc import Callable
from decimal import Decimal

from execrl.benchmarks.problem import Problem, TestKind
from execrl.harness.records import Limits, Verdict
from execrl.harness.sandbox import wire
from execrl.harness.sandbox.executor import execute
from execrl.harness.sandbox.matching import stdout_matches
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

P = 2**61 - 1  # CPython hashes an int modulo this prime: k * P hashes to 0
FAST = settings(max_examples=150, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
SANDBOX = settings(FAST, max_examples=25)
"""Each example forks a sandboxed program (tens of ms)."""


def fuzz(*strategies: st.SearchStrategy, sandboxed: bool = False) -> Callable[[Callable], Callable]:
    """`@given(*strategies)` under the default suite's fixed budget; the bare check and its strategies stay on the
    test (`execrl_fuzz`), so tests/perf/fuzz_judge.py can run it again with its own seeds and budget."""

    def decorate(check: Callable) -> Callable:
        test = (SANDBOX if sandboxed else FAST)(given(*strategies)(check))
        test.execrl_fuzz = (check, strategies, sandboxed)  # type: ignore[attr-defined]
        return test

    return decorate


DECODE_SECONDS = 2.0
"""The most one decode may take here: generated values are small, so anything near it is a blow-up."""

# --- generated wire data: valid, malformed and hostile -------------------------------------------------

colliding_int = st.integers(1, 10**6).map(lambda k: {"I": hex(k * P)})
hex_text = st.one_of(st.integers(-(2**300), 2**300).map(hex), st.text("0123456789abcdefxX-+_ gz", max_size=12))
scalar_data = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**60), 2**60), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8), colliding_int, st.builds(lambda h: {"I": h}, hex_text),
    st.sampled_from([{"F": "nan"}, {"F": "inf"}, {"F": "-inf"}, {"F": "NaN!"}]),
    st.builds(lambda h: {"B": h}, hex_text), st.builds(lambda h: {"H": h}, st.integers(-3, 10)),
)  # fmt: skip


def _tagged(children: st.SearchStrategy) -> st.SearchStrategy:
    tag = st.one_of(st.sampled_from("TSZCDLX"), st.text(max_size=3))
    pairs = st.lists(st.one_of(st.lists(children, min_size=2, max_size=2), children), max_size=4)
    return st.one_of(
        st.builds(lambda t, xs: {t: xs}, tag, st.lists(children, max_size=12)),
        st.builds(lambda xs: {"D": xs}, pairs),
        st.dictionaries(st.text(max_size=2), children, max_size=3),  # zero or several keys: malformed
    )


wire_data = st.recursive(scalar_data, lambda children: st.one_of(st.lists(children, max_size=12), _tagged(children)),
                         max_leaves=60)  # fmt: skip


@fuzz(wire_data)
def test_decoding_anything_returns_a_value_or_raises_a_wire_error_quickly(data) -> None:
    start = time.perf_counter()
    try:
        wire.decode(data, lambda h: ("handle", h))
    except wire.WireError:
        pass
    assert time.perf_counter() - start < DECODE_SECONDS


@fuzz(st.one_of(st.binary(max_size=200), wire_data.map(lambda d: json.dumps(d).encode())))
def test_loading_any_frame_body_returns_json_or_raises_a_wire_error(body: bytes) -> None:
    try:
        wire.loads(body)
    except wire.WireError:
        pass


# --- plain values round trip --------------------------------------------------------------------------

hashable_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-(2**70), 2**70), st.text(max_size=6),
              st.binary(max_size=6), st.floats(allow_nan=False)),
    lambda children: st.one_of(st.tuples(children, children), st.frozensets(children, max_size=4)),
    max_leaves=12,
)  # fmt: skip
plain_value = st.recursive(
    hashable_value,
    lambda children: st.one_of(st.lists(children, max_size=6), st.dictionaries(hashable_value, children, max_size=4),
                               st.sets(hashable_value, max_size=4)),
    max_leaves=30,
)  # fmt: skip


@fuzz(plain_value)
def test_plain_values_round_trip(value) -> None:
    assert wire.decode(wire.encode(value)) == value


# --- collisions hidden anywhere in an honest value are refused, in linear time --------------------------


def _hide(value: object, colliding: list[dict], draw) -> object:
    """`value` encoded, with the colliding ints spread over fresh lists, tuples and frozensets inside it."""
    data = wire.encode(value)
    chunks: list = []
    rest = list(colliding)
    while rest:
        n = draw(st.integers(1, 12))
        chunk, rest = rest[:n], rest[n:]
        chunks.append(draw(st.sampled_from([lambda c: c, lambda c: {"T": c}, lambda c: {"Z": c}]))(chunk))
    for _ in range(draw(st.integers(0, 3))):  # nest the chunks a little deeper
        chunks = [draw(st.sampled_from([lambda c: c, lambda c: {"T": c}]))(chunks)]
    return [data, *chunks] if draw(st.booleans()) else [*chunks, data]


@fuzz(plain_value, st.integers(wire.MAX_SHARED_HASH + 1, 3000), st.data())
def test_values_that_collide_in_hash_are_refused_wherever_they_hide(value, n: int, data) -> None:
    hidden = _hide(value, [{"I": hex(k * P)} for k in range(1, n + 1)], data.draw)
    start = time.perf_counter()
    try:
        wire.decode(hidden)
        refused = False
    except wire.WireError:
        refused = True
    assert refused
    assert time.perf_counter() - start < DECODE_SECONDS


# --- stdout matching: a wrong integer answer never matches ----------------------------------------------


def _spellings(n: int) -> st.SearchStrategy[str]:
    return st.sampled_from([str(n), f"{n}.0", f"{n:+d}", f"0{n}" if n >= 0 else f"-0{-n}", repr(float(n)),
                            f"{n:e}", f"{n}.000001", f" {n} "])  # fmt: skip


@fuzz(st.one_of(st.integers(-(10**6), 10**6), st.integers(2**53 - 4, 2**53 + 4), st.integers(-(10**30), 10**30)),
       st.integers(-2, 2), st.data())  # fmt: skip
def test_an_integer_answer_matches_only_its_own_digits(expected: int, off_by: int, data) -> None:
    text = data.draw(_spellings(expected + off_by))
    if stdout_matches(text, f"{expected}\n"):  # then the text spells exactly that integer, with the same digits
        digits, tail = text.strip()[: len(str(expected))], text.strip()[len(str(expected)) :]
        assert Decimal(text.strip()) == expected and digits == str(expected) and tail in ("", ".0"), text


@fuzz(st.lists(st.integers(0, 1), min_size=1, max_size=12), st.lists(st.integers(0, 1), min_size=1, max_size=12))
def test_binary_strings_match_only_when_equal(expected: list[int], printed: list[int]) -> None:
    e, g = "".join(map(str, expected)), "".join(map(str, printed))
    assert stdout_matches(g + "\n", e + "\n") is (e == g)


@fuzz(st.floats(-1e9, 1e9, allow_nan=False), st.floats(-1e9, 1e9, allow_nan=False))
def test_a_float_answer_matches_within_the_tolerance_only(expected: float, got: float) -> None:
    ok = stdout_matches(repr(got), repr(expected))
    assert ok is math.isclose(float(repr(got)), float(repr(expected)), rel_tol=1e-6, abs_tol=1e-6)


number_chars = st.text("0123456789.eE+-x", max_size=4)


@fuzz(st.tuples(number_chars, st.text("0123456789", min_size=1, max_size=3), st.integers(2000, 20_000), number_chars),
      st.sampled_from(["0.5", "7", "010", "1e-6", "-0"]))  # fmt: skip
def test_matching_a_long_token_takes_linear_time(parts: tuple[str, str, int, str], expected: str) -> None:
    head, unit, n, tail = parts  # a long run of digits between a short head and tail
    got = head + unit * (n // len(unit)) + tail
    start = time.perf_counter()
    stdout_matches(got, expected)
    assert time.perf_counter() - start < 0.2


# --- end to end: forged replies and stdout from real sandboxed programs ---------------------------------

LIMITS = Limits(timeout=1.0, program_timeout=4.0, memory=512 * 1024**2, retry_timeouts=False)
ANSWER = "execrl-fuzz-answer-7f3a9c"
"""What every test expects: no generated value equals it."""
ASSERTS = Problem(
    task_id="fuzz/asserts", benchmark="humaneval", prompt="def add(a, b):\n", test_kind=TestKind.ASSERT,
    entry_point="add",
    check_code="def check(candidate):\n" + "".join(f"    {line}\n" for line in [
        f"assert candidate(1, 2) == {ANSWER!r}", f"assert set(candidate(1, 2)) == {{{ANSWER!r}}}",
        f"assert tuple(candidate(1, 2)) == ({ANSWER!r},)", "assert len(candidate(1, 2)) == 987654321",
        f"assert str(candidate(1, 2)) == {ANSWER!r}", f"assert sorted(candidate(1, 2)) == [{ANSWER!r}]",
        f"assert {{{ANSWER!r}: True}}[candidate(1, 2)]", f"assert candidate(1, 2) in {{{ANSWER!r}}}",
    ]),
)  # fmt: skip
REPLIER = textwrap.dedent("""
    import os
    FRAME = {frame!r}
    def add(a, b):
        while True:  # answer this call and every later one with the forged frame
            os.write(4, len(FRAME).to_bytes(4, 'big') + FRAME)
            size = int.from_bytes(os.read(3, 4), 'big')
            while size:
                size -= len(os.read(3, size))
""")
replies = wire_data.map(lambda d: json.dumps({"ok": d}).encode())
frames = st.one_of(
    replies, replies, replies,  # weighted: values reach the test code's comparisons
    st.builds(lambda t, m: json.dumps({"exc": {"type": t, "message": m}}).encode(),
              st.one_of(st.sampled_from(["ValueError", "MemoryError", "SystemExit", "KeyError"]), wire_data),
              wire_data),
    wire_data.map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=64),
)  # fmt: skip


def _judged(problem: Problem, program: str) -> Verdict:
    start = time.monotonic()
    result = execute(problem, program, LIMITS, slot=6)
    assert time.monotonic() - start < LIMITS.program_timeout + 5.0, "the judge's time per reply is not bounded"
    return result.verdict


@fuzz(frames, sandboxed=True)
def test_a_forged_reply_is_never_passed_nor_a_sandbox_error(frame: bytes) -> None:
    verdict = _judged(ASSERTS, REPLIER.format(frame=frame))
    assert verdict not in (Verdict.PASSED, Verdict.SANDBOX_ERROR)


STDIO = Problem(task_id="fuzz/stdio", benchmark="apps", prompt="", test_kind=TestKind.STDIO,
                inputs=("\n", "\n"), outputs=("9007199254740993\n", "0101 -7 2.5\n"))  # fmt: skip
wrong_stdout = st.one_of(
    st.sampled_from(["9007199254740992.0", "9007199254740994.0", "+9007199254740993", "09007199254740993",
                     "9.007199254740993e15", "101 -7 2.5", "00101 -7 2.5", "0101 -7.0000001 2.5", "0101 -07 2.5"]),
    st.text(max_size=40),
)  # fmt: skip


@fuzz(wrong_stdout, sandboxed=True)
def test_printed_output_passes_only_if_it_is_an_accepted_answer(text: str) -> None:
    # No text is right for both tests (one token, then three), so none may pass.
    assert _judged(STDIO, f"import sys\nsys.stdout.write({text!r})\n") not in (Verdict.PASSED, Verdict.SANDBOX_ERROR)
