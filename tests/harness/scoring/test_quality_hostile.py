"""Quality scoring on hostile program text: every input ends within a bound, with figures or a reason.

One row per input. Before the scorer ran radon in its own killable worker, the huge statement took ~100 s
of the metrics stage (radon re-tokenises a statement once per line it spans) and a lone surrogate crashed
it (the ruff temp file could not be written); the worker, the size cap and the time budgets bound both.
"""

from __future__ import annotations

import math
import os
import random
import threading
import time

import pytest
from execrl.harness.scoring import quality
from execrl.harness.scoring.quality import quality_many, summarize

SAMPLE_TIMEOUT = 3.0  # the scored rows take <= 0.2 s unloaded; 15x that on a machine shared six ways
SLACK = 15.0  # a worker restart, ruff, and a loaded 2-core machine
_junk = random.Random(0)

HOSTILE = [
    # (id, program, expected reason (None: scored), why)
    (
        "huge-statement",
        "x = [\n" + "".join(f"    {i},\n" for i in range(6000)) + "]\n",
        "timeout",
        "a 6,000-line statement: radon's raw tokeniser is quadratic in it (~100 s in process)",
    ),
    (
        "huge-multiline-string",
        'x = """' + "a\n" * 30000 + '"""\n',
        "timeout",
        "a 30,000-line string literal takes the same quadratic path",
    ),
    (
        "deep-unary-nesting",
        "x = " + "-" * 100000 + "1\n",
        "memory",
        "100,000 nested unary minus: the parser's stack overflows (MemoryError)",
    ),
    (
        "deep-attribute-chain",
        "x" + ".a" * 60000 + "\n",
        "too_deep",
        "60,000 nested attributes: ast construction hits the recursion limit",
    ),
    (
        "deep-binop-long-line",
        "x = " + "1 + " * 40000 + "1\n",
        "too_deep",
        "one 160,000-char line of 40,000 nested additions: the recursion limit",
    ),
    (
        "deep-parentheses",
        "x = " + "(" * 1000 + "1" + ")" * 1000 + "\n",
        "syntax_error",
        "1,000 nested parentheses: the tokenizer refuses more than 200",
    ),
    (
        "deep-blocks",
        "".join(" " * i + "if x:\n" for i in range(150)) + " " * 150 + "pass\n",
        "syntax_error",
        "150 nested blocks: past the tokenizer's 100 indentation levels",
    ),
    (
        "lone-surrogate-in-string",
        "x = '\ud800'\n",
        "unencodable",
        "a lone high surrogate (JSON '\\ud800' in a samples file) in a string literal",
    ),
    ("lone-surrogate-in-comment", "x = 1  # \udfff\n", "unencodable", "a lone low surrogate in a comment"),
    ("lone-surrogate-as-code", "\ud83d = 1\n", "unencodable", "half an emoji's pair, where a name would be"),
    (
        "surrogateescape-byte",
        "x = 1  # \udcff\n",
        "unencodable",
        "a byte of a non-UTF-8 file decoded with surrogateescape",
    ),
    ("nul-byte", "x = 1\x00\n", "syntax_error", "a NUL byte: ast refuses it (ValueError)"),
    (
        "binary-junk",
        bytes(_junk.randrange(256) for _ in range(50000)).decode("utf-8", "replace"),
        "syntax_error",
        "50 kB of random bytes",
    ),
    ("unterminated-string", '"""' + "a\n" * 20000, "syntax_error", "a string literal never closed, 20,000 lines"),
    ("100k-line-program", "pass\n" * 100000, "too_large", "100,000 lines: over the size cap, never parsed"),
    ("one-huge-line", "x = '" + "a" * 1_000_000 + "'\n", "too_large", "a 1 MB line"),
    ("very-long-line", "x = [" + "1, " * 3000 + "]\n", None, "a 9,000-char line (E501 at 119) is scored"),
    ("many-lines-under-cap", "x = 1\n" * 1000, None, "1,000 short statements: linear, scored"),
    ("empty", "", "empty", "nothing at all scores 0"),
]


@pytest.mark.parametrize(
    "program, reason", [(program, reason) for _, program, reason, _ in HOSTILE], ids=[row[0] for row in HOSTILE]
)
def test_hostile_program_ends_within_the_bound_with_figures_or_a_reason(program: str, reason: str | None) -> None:
    start = time.monotonic()
    (q,) = quality_many([program], sample_timeout=SAMPLE_TIMEOUT)
    assert time.monotonic() - start < SAMPLE_TIMEOUT + SLACK
    assert q.reason == reason
    if reason is None:
        assert 0.0 <= q.score <= 10.0 and not math.isnan(q.maintainability)
    else:
        assert q.score == 0.0 and math.isnan(q.cyclomatic) and math.isnan(q.maintainability)


def test_a_hostile_batch_keeps_the_normal_programs_figures_and_counts_the_rest_by_reason() -> None:
    normal = "def f(x):\n    return x + 1\n"
    programs = [normal, *(row[1] for row in HOSTILE), normal]
    alone = quality_many([normal])[0]
    start = time.monotonic()
    qualities = quality_many(programs, sample_timeout=SAMPLE_TIMEOUT)
    assert time.monotonic() - start < 2 * SAMPLE_TIMEOUT + SLACK  # two rows time out
    assert qualities[0] == alone and qualities[-1] == alone  # the worker was replaced after each kill
    summary = summarize(qualities)
    expected: dict[str, int] = {}
    for _, _, reason, _ in HOSTILE:
        if reason is not None:
            expected[reason] = expected.get(reason, 0) + 1
    assert summary["unscored"] == dict(sorted(expected.items()))
    # timeouts, too_large... are left out of the mean; syntax errors and empty programs count as 0
    kept = [q.score for q in qualities if q.reason in (None, "syntax_error", "empty")]
    assert summary["quality_score"] == pytest.approx(sum(kept) / len(kept))


def test_the_batch_budget_ends_a_batch_of_slow_programs_and_names_what_it_cut() -> None:
    slow = HOSTILE[0][1]
    quality_many(["x = 1\n"])  # warm: a worker start must not eat into the batch under test
    start = time.monotonic()
    qualities = quality_many([slow, slow, slow, "x = 1\n"], sample_timeout=1.5, batch_timeout=2.5)
    assert time.monotonic() - start < 2.5 + SLACK
    assert [q.reason for q in qualities] == ["timeout", "budget", "budget", "budget"]


def test_a_worker_that_dies_mid_program_costs_that_program_only() -> None:
    quality_many(["x = 1\n"])  # warm: the worker is running
    pid = quality._WORKER._proc.pid
    killer = threading.Timer(0.5, os.kill, (pid, 9))
    killer.start()
    qualities = quality_many([HOSTILE[0][1], "x = 1\n"], sample_timeout=30.0)
    killer.join()
    assert [q.reason for q in qualities] == ["crashed", None]
    assert quality._WORKER._proc.pid != pid


def test_the_worker_is_reused_across_batches() -> None:
    quality_many(["x = 1\n"])
    pid = quality._WORKER._proc.pid
    quality_many(["y = 2\n", "def f():\n    pass\n"])
    assert quality._WORKER._proc.pid == pid


def test_when_no_process_can_be_started_programs_get_a_reason_not_an_exception(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise BlockingIOError(11, "Resource temporarily unavailable")  # fork at RLIMIT_NPROC

    quality._WORKER.close()
    monkeypatch.setattr(quality.subprocess, "Popen", refuse)
    (q,) = quality_many(["x = 1\n"])
    assert q.reason == "crashed" and q.score == 0.0


_LINT_BAIT = "import os\nimport sys\nx=1;y=2\n"
"""Two unused imports and two statements on one line: three ruff findings (F401, F401, E702)."""
NOQA = [
    # (id, program, why) - found by a red-team review: each scored the lint term 10/10 (no findings)
    ("file-level-ruff-noqa", "# ruff: noqa\n" + _LINT_BAIT, "`# ruff: noqa` exempts the whole file"),
    ("file-level-flake8-noqa", "# flake8: noqa\n" + _LINT_BAIT, "ruff honours flake8's file exemption too"),
    ("line-noqa", "".join(line + "  # noqa\n" for line in _LINT_BAIT.splitlines()), "a bare `# noqa` per line"),
]


@pytest.mark.parametrize("program", [row[1] for row in NOQA], ids=[row[0] for row in NOQA])
def test_noqa_comments_do_not_hide_the_programs_findings(program: str) -> None:
    # The quality score is a PPO reward term: a policy must not buy the lint sub-score with a comment.
    (q,) = quality_many([program], sample_timeout=SAMPLE_TIMEOUT)
    lines = sum(bool(line.strip()) for line in program.splitlines())
    assert q.ruff_per_100_lines == pytest.approx(100.0 * 3 / lines)
