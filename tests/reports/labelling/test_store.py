"""The labelling database: K labellers a pair, never twice to one, resume, skip, own labels only, kills survive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from execrl.benchmarks.errors import UserError
from execrl.reports.labelling.store import Store


def test_each_pair_goes_to_k_labellers_and_never_twice_to_the_same_one(store: Store) -> None:
    people = [store.labeller(store.add_labeller(name)) for name in ("ann", "bob", "cy")]
    served: dict[str, list[str]] = {}
    for who in people:
        while (pair := store.next_pair(who, k=2)) is not None:
            assert store.record_label(who, pair.pair_id, "a", "")
            served.setdefault(pair.pair_id, []).append(who.name)
    assert len(served) == 5 and all(len(names) == len(set(names)) == 2 for names in served.values())
    assert [len([p for p, n in served.items() if who.name in n]) for who in people] == [5, 5, 0]


def test_a_labeller_resumes_at_the_pair_left_open(store: Store) -> None:
    who = store.labeller(store.add_labeller("ann"))
    first = store.next_pair(who, k=2)
    assert store.next_pair(who, k=2) == first  # a reload: the same pair, not a new one
    store.record_label(who, first.pair_id, "b", "")
    assert store.next_pair(who, k=2) != first
    assert store.progress(who, k=2).labelled == 1 and store.progress(who, k=2).remaining == 4


def test_a_skipped_pair_is_not_served_again_and_frees_its_place(store: Store) -> None:
    ann, bob = (store.labeller(store.add_labeller(n)) for n in ("ann", "bob"))
    skipped = store.next_pair(ann, k=1)
    assert store.skip(ann, skipped.pair_id)
    assert store.next_pair(ann, k=1).pair_id != skipped.pair_id
    assert store.next_pair(bob, k=1).pair_id == skipped.pair_id  # k=1, and ann's place was given back


def test_no_labeller_labels_a_pair_not_served_to_them_or_reads_another_labellers_label(store: Store) -> None:
    ann, bob = (store.labeller(store.add_labeller(n)) for n in ("ann", "bob"))
    pair = store.next_pair(ann, k=2)
    assert store.record_label(ann, pair.pair_id, "a", "ann's note")
    assert not store.record_label(bob, pair.pair_id, "b", "overwrite")  # never served to bob
    assert not store.skip(bob, pair.pair_id)
    assert store.own_labels(bob) == [] and store.own_label(bob, pair.pair_id) is None
    assert [(x.choice, x.comment) for x in store.own_labels(ann)] == [("a", "ann's note")]
    bob_pair = store.next_pair(bob, k=2)  # now served to bob too: his label is his own row
    assert bob_pair == pair and store.record_label(bob, pair.pair_id, "b", "")
    assert store.own_label(ann, pair.pair_id).choice == "a"


def test_tokens_are_stored_only_as_digests_and_names_are_unique(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    token = store.add_labeller("ann")
    files = [p for p in tmp_path.iterdir() if p.name.startswith("db.sqlite")]  # the database and any WAL
    assert files and all(token.encode() not in p.read_bytes() for p in files)
    assert store.labeller(token).name == "ann" and store.labeller(token + "x") is None
    with pytest.raises(UserError, match="already exists"):
        store.add_labeller("ann")


def test_a_file_that_is_not_a_labelling_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "junk.sqlite").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(UserError, match="not a labelling database"):
        Store(tmp_path / "junk.sqlite")


KILLED_WRITER = """
import os, signal, sqlite3, sys
from execrl.reports.labelling.store import Store
store = Store(sys.argv[1])
reader = sqlite3.connect(sys.argv[1])  # an open connection: the WAL is not checkpointed away on close
reader.execute("SELECT COUNT(*) FROM labels").fetchone()
who = store.labeller(sys.argv[2])
pair = store.next_pair(who, 2)
store.record_label(who, pair.pair_id, "tie", "committed")
print(pair.pair_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no clean shutdown, no checkpoint of the WAL
"""


def test_a_label_committed_before_a_sigkill_is_kept(store: Store) -> None:
    token = store.add_labeller("ann")
    out = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(store.path), token], capture_output=True, text=True)
    assert out.returncode == -signal.SIGKILL, out.stderr
    assert os.path.getsize(str(store.path) + "-wal") > 0  # the label is in the WAL, not yet in the main file
    assert [(x.pair_id, x.choice) for x in store.own_labels(store.labeller(token))] == [(out.stdout.strip(), "tie")]
