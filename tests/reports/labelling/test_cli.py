"""`execrl label` on the command line: links, export, stats, and one-line refusals of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from execrl.harness.cli import main as execrl
from execrl.reports.labelling.store import Store

from .conftest import pair_row


def test_add_user_prints_a_personal_link_that_opens_the_labellers_page(tmp_path: Path, capsys) -> None:
    db = tmp_path / "labels.sqlite"
    assert execrl(["label", "add-user", "ann", "--db", str(db), "--url", "http://host:9000/"]) == 0
    link = capsys.readouterr().out.strip()
    assert link.startswith("http://host:9000/l/") and Store(db).labeller(link.rsplit("/", 1)[1]).name == "ann"
    assert execrl(["label", "add-user", "ann", "--db", str(db)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_export_and_stats_report_the_labels(store: Store, tmp_path: Path, capsys) -> None:
    for name in ("ann", "bob"):
        who = store.labeller(store.add_labeller(name))
        while (pair := store.next_pair(who, k=2)) is not None:
            store.record_label(who, pair.pair_id, "a", "")
    out = tmp_path / "prefs.jsonl"
    assert execrl(["label", "export", "--db", str(store.path), "--out", str(out)]) == 0
    assert "5 pair(s)" in capsys.readouterr().out and len(out.read_text().splitlines()) == 5
    assert execrl(["label", "export", "--db", str(store.path), "--out", str(out)]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert execrl(["label", "stats", "--db", str(store.path), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["labels_per_person"] == {"ann": 5, "bob": 5} and figures["execution"]["agree"] == 6
    assert execrl(["label", "stats", "--db", str(store.path)]) == 0
    assert "Cohen's kappa ann / bob" in capsys.readouterr().out


BAD_INPUT = [
    ("pairs-line", ["--pairs", "{pairs}"], "pairs.jsonl:2: missing string field(s) b"),  # names the file and line
    ("pairs-missing", ["--pairs", "{tmp}/nope.jsonl"], "nope.jsonl: no such file"),
    ("both-sources", ["--pairs", "{pairs}", "--runs", "{tmp}"], "not both"),
    ("runs-not-evaluated", ["--runs", "{tmp}/empty"], "no results.jsonl"),
    ("no-pairs-at-all", [], "holds no pairs"),
    ("k-zero", ["--pairs", "{pairs}", "--k", "0"], "must be >= 1"),
    ("share-out-of-range", ["--runs", "{run}", "--undecided-share", "1.5"], "[0, 1]"),
]


@pytest.mark.parametrize(("why", "args", "needle"), BAD_INPUT, ids=[row[0] for row in BAD_INPUT])
def test_serve_refuses_bad_input_in_one_line_before_serving(tmp_path: Path, capsys, why, args, needle) -> None:
    from tests.evaluated_runs import write_humaneval_run

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps(pair_row(0)) + "\n" + json.dumps({**pair_row(1), "b": None}) + "\n")
    (tmp_path / "empty").mkdir()
    run = write_humaneval_run(tmp_path / "run", {"HumanEval/0": ["passed", "failed"]})
    values = {"pairs": pairs, "tmp": tmp_path, "run": run}
    argv = ["label", "serve", "--db", str(tmp_path / "db.sqlite"), *(a.format(**values) for a in args)]
    assert execrl(argv) == 2, why
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
