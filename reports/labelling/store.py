"""Pairs, labellers and their labels in one SQLite file (WAL), every label committed before the next pair is served.

- A labeller is a name and a personal token; only the token's sha256 is stored, so the database file does not
  hold anyone's link (`add_labeller` returns the token once).
- A pair is *served* to a labeller by an assignment row: `next_pair` returns the labeller's open assignment
  (so a reload or a restarted server resumes at the same pair) or assigns the first pair that has fewer than
  K labellers and was never assigned to this one, in one IMMEDIATE transaction (two labellers asking at once
  never both take the last place). A labeller may label only pairs assigned to them (`record_label`), and
  every read is by labeller id: no function returns another labeller's label.
- A skipped pair is never served to that labeller again and frees its place for someone else.
- Each write is its own transaction, committed before the request answers; WAL with synchronous=FULL means a
  committed label survives a SIGKILL of the server (and a power cut): https://www.sqlite.org/wal.html.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from execrl.benchmarks.errors import UserError
from execrl.reports.labelling.pairs import Pair

CHOICES = ("a", "b", "tie", "both_bad")
"""A label: A better, B better, tie, both bad."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pairs (
    pair_id TEXT PRIMARY KEY, position INTEGER NOT NULL, task_id TEXT NOT NULL, decided INTEGER NOT NULL,
    body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS labellers (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, token_sha256 TEXT NOT NULL UNIQUE, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS assignments (
    pair_id TEXT NOT NULL REFERENCES pairs, labeller_id INTEGER NOT NULL REFERENCES labellers,
    served_at TEXT NOT NULL, skipped INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (pair_id, labeller_id));
CREATE TABLE IF NOT EXISTS labels (
    pair_id TEXT NOT NULL, labeller_id INTEGER NOT NULL,
    choice TEXT NOT NULL CHECK (choice IN ('a', 'b', 'tie', 'both_bad')), comment TEXT NOT NULL,
    labelled_at TEXT NOT NULL, PRIMARY KEY (pair_id, labeller_id),
    FOREIGN KEY (pair_id, labeller_id) REFERENCES assignments (pair_id, labeller_id));
"""


@dataclass(frozen=True)
class Labeller:
    id: int
    name: str


@dataclass(frozen=True)
class Label:
    pair_id: str
    labeller: str
    choice: str
    comment: str
    labelled_at: str


@dataclass(frozen=True)
class Progress:
    labelled: int
    remaining: int
    """Pairs this labeller may still be served (open assignment included)."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class Store:
    """One labelling database. Opens a connection per call, so it is safe from the server's worker threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise UserError(f"--db {self.path}: is a folder, expected a SQLite file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(self.path, timeout=30)
            try:
                db.execute("PRAGMA journal_mode=WAL")  # a property of the file: set once, kept by every connection
                db.executescript(SCHEMA)  # commits as it goes; IF NOT EXISTS makes it safe to rerun
                db.execute("INSERT OR IGNORE INTO meta VALUES ('csrf_secret', ?)", (secrets.token_hex(32),))
                db.commit()
            finally:
                db.close()
        except sqlite3.DatabaseError as e:
            raise UserError(f"--db {self.path}: not a labelling database ({e})") from None

    @contextmanager
    def _connect(self, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as e:
            raise UserError(f"--db {self.path}: cannot open ({e})") from None
        try:
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            yield db
            db.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if isinstance(e, sqlite3.IntegrityError):
                raise
            raise UserError(f"--db {self.path}: not a labelling database ({e})") from None
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    # -- setup

    def meta(self, key: str, default: str | None = None) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self._connect() as db:
            db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                       (key, value))  # fmt: skip

    def add_pairs(self, pairs: Sequence[Pair]) -> int:
        """Add pairs not yet present (by pair id), after those already there; returns how many were new."""
        with self._connect(immediate=True) as db:
            start = db.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM pairs").fetchone()[0]
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO pairs VALUES (?, ?, ?, ?, ?)",
                [
                    (p.pair_id, start + i, p.task_id, int(p.decided), json.dumps(p.to_json()))
                    for i, p in enumerate(pairs)
                ],
            )
            return db.total_changes - before

    def add_labeller(self, name: str) -> str:
        """Register `name`; returns their new personal token (shown once, stored only as a digest)."""
        if not name.strip() or len(name) > 100:
            raise UserError(f"labeller name {name!r}: expected 1 to 100 characters")
        token = secrets.token_urlsafe(24)
        try:
            with self._connect() as db:
                db.execute("INSERT INTO labellers (name, token_sha256, created) VALUES (?, ?, ?)",
                           (name, token_digest(token), _now()))  # fmt: skip
        except sqlite3.IntegrityError:
            raise UserError(f"labeller {name!r} already exists in {self.path}") from None
        return token

    # -- serving

    def labeller(self, token: str) -> Labeller | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT id, name FROM labellers WHERE token_sha256 = ?", (token_digest(token),)
            ).fetchone()
        return Labeller(*row) if row else None

    def pair(self, pair_id: str) -> Pair | None:
        with self._connect() as db:
            row = db.execute("SELECT body FROM pairs WHERE pair_id = ?", (pair_id,)).fetchone()
        return Pair.from_json(json.loads(row[0])) if row else None

    def next_pair(self, who: Labeller, k: int) -> Pair | None:
        """The labeller's open assignment, else a newly assigned pair with fewer than `k` labellers; None when done."""
        with self._connect(immediate=True) as db:
            row = db.execute(
                """SELECT a.pair_id FROM assignments a LEFT JOIN labels l USING (pair_id, labeller_id)
                   WHERE a.labeller_id = ? AND a.skipped = 0 AND l.choice IS NULL ORDER BY a.served_at LIMIT 1""",
                (who.id,),
            ).fetchone()
            if row is None:
                row = db.execute(
                    """SELECT p.pair_id FROM pairs p
                       WHERE NOT EXISTS (SELECT 1 FROM assignments a WHERE a.pair_id = p.pair_id AND a.labeller_id = ?)
                         AND (SELECT COUNT(*) FROM assignments a WHERE a.pair_id = p.pair_id AND a.skipped = 0) < ?
                       ORDER BY p.position LIMIT 1""",
                    (who.id, k),
                ).fetchone()
                if row is None:
                    return None
                db.execute("INSERT INTO assignments (pair_id, labeller_id, served_at) VALUES (?, ?, ?)",
                           (row[0], who.id, _now()))  # fmt: skip
            body = db.execute("SELECT body FROM pairs WHERE pair_id = ?", (row[0],)).fetchone()[0]
        return Pair.from_json(json.loads(body))

    def assigned(self, who: Labeller, pair_id: str) -> bool:
        with self._connect() as db:
            row = db.execute("SELECT 1 FROM assignments WHERE pair_id = ? AND labeller_id = ?", (pair_id, who.id))
            return row.fetchone() is not None

    def record_label(self, who: Labeller, pair_id: str, choice: str, comment: str) -> bool:
        """Store (or change) the labeller's own label of an assigned pair; False when the pair is not theirs."""
        if choice not in CHOICES:
            raise ValueError(f"choice {choice!r} is not one of {CHOICES}")
        with self._connect(immediate=True) as db:
            mine = db.execute("SELECT 1 FROM assignments WHERE pair_id = ? AND labeller_id = ?", (pair_id, who.id))
            if mine.fetchone() is None:
                return False
            db.execute("UPDATE assignments SET skipped = 0 WHERE pair_id = ? AND labeller_id = ?", (pair_id, who.id))
            db.execute(
                """INSERT INTO labels VALUES (?, ?, ?, ?, ?) ON CONFLICT (pair_id, labeller_id)
                   DO UPDATE SET choice = excluded.choice, comment = excluded.comment,
                                 labelled_at = excluded.labelled_at""",
                (pair_id, who.id, choice, comment, _now()),
            )
        return True

    def skip(self, who: Labeller, pair_id: str) -> bool:
        """Skip an assigned, unlabelled pair: never served to this labeller again. False when not theirs."""
        with self._connect() as db:
            cur = db.execute(
                """UPDATE assignments SET skipped = 1 WHERE pair_id = ? AND labeller_id = ?
                   AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.pair_id = ? AND l.labeller_id = ?)""",
                (pair_id, who.id, pair_id, who.id),
            )
            return cur.rowcount == 1

    def own_label(self, who: Labeller, pair_id: str) -> Label | None:
        labels = [x for x in self.own_labels(who) if x.pair_id == pair_id]
        return labels[0] if labels else None

    def own_labels(self, who: Labeller) -> list[Label]:
        """The labeller's own labels, oldest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT pair_id, choice, comment, labelled_at FROM labels WHERE labeller_id = ? ORDER BY labelled_at",
                (who.id,),
            ).fetchall()
        return [Label(pair_id, who.name, choice, comment, at) for pair_id, choice, comment, at in rows]

    def progress(self, who: Labeller, k: int) -> Progress:
        with self._connect() as db:
            labelled = db.execute("SELECT COUNT(*) FROM labels WHERE labeller_id = ?", (who.id,)).fetchone()[0]
            remaining = db.execute(
                """SELECT COUNT(*) FROM pairs p WHERE
                   EXISTS (SELECT 1 FROM assignments a WHERE a.pair_id = p.pair_id AND a.labeller_id = :me
                           AND a.skipped = 0 AND NOT EXISTS (
                               SELECT 1 FROM labels l WHERE l.pair_id = p.pair_id AND l.labeller_id = :me))
                   OR (NOT EXISTS (SELECT 1 FROM assignments a WHERE a.pair_id = p.pair_id AND a.labeller_id = :me)
                       AND (SELECT COUNT(*) FROM assignments a WHERE a.pair_id = p.pair_id AND a.skipped = 0) < :k)""",
                {"me": who.id, "k": k},
            ).fetchone()[0]
        return Progress(labelled, remaining)

    # -- out (the command line's, not the server's: these read everyone's labels)

    def all_labels(self) -> list[Label]:
        with self._connect() as db:
            rows = db.execute(
                """SELECT l.pair_id, u.name, l.choice, l.comment, l.labelled_at FROM labels l
                   JOIN labellers u ON u.id = l.labeller_id ORDER BY l.pair_id, u.name"""
            ).fetchall()
        return [Label(*row) for row in rows]

    def all_pairs(self) -> list[Pair]:
        with self._connect() as db:
            rows = db.execute("SELECT body FROM pairs ORDER BY position").fetchall()
        return [Pair.from_json(json.loads(body)) for (body,) in rows]
