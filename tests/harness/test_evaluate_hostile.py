"""`execrl evaluate` on hostile completions, on the real sandbox: it ends within a bound and writes metrics.json.

One samples line per input. Before quality scoring was bounded, the huge statement alone took ~100 s of
the metrics stage and any lone surrogate ended the command without metrics.json, again on every resume.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest
from execrl.harness.evaluate import main

_junk = random.Random(1)

HOSTILE = [
    # (id, HumanEval/0 completion or raw line, quality's reason (None: scored; "-": line skipped), why)
    ("huge-statement", "    x = [\n" + "        1,\n" * 6000 + "    ]\n    return False\n", "timeout",
     "a 6,000-line statement: radon is quadratic in it"),
    ("deep-nesting", "    return " + "-" * 100000 + "1\n", "memory", "100,000 nested unary operators"),
    ("surrogate-in-string", "    return '\ud800' == ''\n", "unencodable", "JSON '\\ud800' in a string literal"),
    ("surrogate-in-comment", "    return False  # \udfff\n", "unencodable", "a lone low surrogate in a comment"),
    ("surrogate-as-code", "    return \ud83d\n", "unencodable", "half a surrogate pair where a name would be"),
    ("surrogateescape-bytes", "    return False  # \udcff\udcfe\n", "unencodable", "bytes of a non-UTF-8 file"),
    ("nul-byte", "    return False\x00\n", "syntax_error", "a NUL byte"),
    ("very-long-line", "    x = '" + "a" * 150_000 + "'\n    return False\n", None, "a 150,000-char line"),
    ("binary-junk", bytes(_junk.randrange(256) for _ in range(20000)).decode("latin-1"), "syntax_error",
     "20 kB of random bytes as code points"),
    ("100k-line-program", "    pass\n" * 100_000, "too_large", "100,000 lines: over quality's size cap"),
    ("normal", "    return False\n", None, "an ordinary wrong answer, for comparison"),
]  # fmt: skip
RAW_LINES = [
    # (id, raw samples line, why): lines the reader refuses; --skip-bad counts them
    ("invalid-utf8", b'{"task_id": "HumanEval/0", "completion": "\xed\xa0\x80"}\n', "an encoded surrogate (CESU-8)"),
    ("deep-json", b'{"task_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n", "JSON nested 100,000 deep"),
    ("huge-integer", b'{"task_id": "HumanEval/0", "completion": "", "completion_id": ' + b"9" * 5000 + b"}\n",
     "a 5,000-digit completion id"),
]  # fmt: skip
BOUND_S = 60.0  # 14 lines take ~4 s; in process, radon alone spent ~100 s on the huge statement


@pytest.mark.slow
def test_hostile_completions_end_within_a_bound_and_every_run_writes_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from execrl.harness.scoring import quality

    monkeypatch.setattr(quality, "SAMPLE_TIMEOUT", 3.0)
    samples = tmp_path / "s.jsonl"
    with open(samples, "wb") as f:
        for _, completion, _, _ in HOSTILE:
            f.write(json.dumps({"task_id": "HumanEval/0", "completion": completion}).encode("ascii") + b"\n")
        for _, line, _ in RAW_LINES:
            f.write(line)
    out = tmp_path / "run"
    args = ["--benchmark", "humaneval", "--samples", str(samples), "--out", str(out), "--workers", "1", "--skip-bad"]
    for attempt in ("first run", "resume"):
        (out / "metrics.json").unlink(missing_ok=True)
        start = time.monotonic()
        assert main(args) == 0, attempt
        assert time.monotonic() - start < BOUND_S, attempt
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["n_samples"] == len(HOSTILE) and metrics["skipped_lines"] == len(RAW_LINES)
        expected: dict[str, int] = {}
        for _, _, reason, _ in HOSTILE:
            if reason is not None:
                expected[reason] = expected.get(reason, 0) + 1
        assert metrics["quality"]["unscored"] == dict(sorted(expected.items())), attempt
        assert metrics["quality"]["n_programs"] == len(HOSTILE)
        assert 0.0 <= metrics["metrics"]["quality_score"] <= 10.0
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(results) == len(HOSTILE) and not any(r["passed"] for r in results)
