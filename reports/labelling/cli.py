"""`execrl label SUBCOMMAND`: people judge pairs of programs on a web page; their labels feed the reward model.

execrl label serve --db labels.sqlite --runs RUN [RUN...]     # or --pairs pairs.jsonl
execrl label add-user alice --db labels.sqlite                # prints alice's personal link
execrl label export --db labels.sqlite --out prefs.jsonl      # then: execrl train rm --pairs prefs.jsonl
execrl label stats --db labels.sqlite
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import tyro
from execrl.benchmarks.errors import UserError
from execrl.harness.cli import dispatch
from execrl.harness.flags import parse


@dataclass(kw_only=True)
class DbFlags:
    db: Path
    """SQLite file of pairs, labellers and labels (made by the first `serve` or `add-user`)."""


@dataclass(kw_only=True)
class ServeConfig(DbFlags):
    """Serve the labelling page; pairs from --pairs or --runs are added to --db first (those already there kept)."""

    pairs: Path | None = None
    """JSONL file of pairs: {"task_id", "prompt", "a", "b"} plus optional "statement", "result_a", "result_b"."""
    runs: tuple[Path, ...] = ()
    """Evaluated run folders to draw pairs from: two different samples of the same problem each."""
    undecided_share: float = 0.8
    """With --runs: share of pairs execution cannot separate (both passed, or both failed)."""
    max_pairs: int = 200
    """With --runs: pairs to draw at most."""
    pairs_per_task: int = 2
    """With --runs: at most this many pairs of each kind (decided, undecided) from one task."""
    data_dir: Path | None = None
    """With --runs: data folder for MBPP/APPS problems (default: as the run recorded, else $EXECRL_DATA_DIR)."""
    seed: int = 0
    """Seed of the drawing of pairs."""
    k: int = 2
    """Labellers each pair is shown to (never twice to the same one)."""
    host: str = "127.0.0.1"
    """Address to listen on; only this machine by default (a labeller's link is their credential)."""
    port: int = 8000


@dataclass(kw_only=True)
class AddUserConfig(DbFlags):
    """Register a labeller and print their personal link (shown once: only its digest is stored)."""

    name: tyro.conf.Positional[str]
    """The labeller's name (as shown in stats)."""
    url: str = "http://127.0.0.1:8000"
    """Base address of the server, for the printed link."""


@dataclass(kw_only=True)
class ExportConfig(DbFlags):
    """Write the labels as TRL preference rows (prompt, chosen, rejected, label, n_labellers, agreement)."""

    out: Path
    """JSONL file to write."""
    keep_ties: bool = False
    """Keep pairs judged tie or both bad (label `tie` / `both_bad`; `execrl train rm` leaves them out)."""
    min_labellers: int = 1
    """Leave out pairs labelled by fewer people."""
    force: bool = False
    """Overwrite --out if it exists."""


@dataclass(kw_only=True)
class StatsConfig(DbFlags):
    """Labels per person, agreement between labellers (Fleiss' and Cohen's kappa) and with execution."""

    json: bool = False
    """Print the figures as one JSON object."""


def _store(db: Path, must_exist: bool = True):  # -> Store; imported here so `execrl label --help` stays light
    from execrl.reports.labelling.store import Store

    if must_exist and not db.is_file():
        raise UserError(f"--db {db}: no such file (start with `execrl label serve` or `execrl label add-user`)")
    return Store(db)


def serve(argv: list[str]) -> int:
    cfg = parse(ServeConfig, argv)
    if cfg.pairs and cfg.runs:
        raise UserError("give --pairs or --runs, not both")
    if cfg.k < 1 or cfg.max_pairs < 1 or cfg.pairs_per_task < 1:
        raise UserError("--k, --max-pairs and --pairs-per-task must be >= 1")
    from execrl.reports.labelling.pairs import pairs_from_runs, read_pairs_file

    store = _store(cfg.db, must_exist=False)
    if cfg.pairs:
        pairs = read_pairs_file(cfg.pairs)
    elif cfg.runs:
        pairs = pairs_from_runs(
            cfg.runs,
            max_pairs=cfg.max_pairs,
            undecided_share=cfg.undecided_share,
            pairs_per_task=cfg.pairs_per_task,
            seed=cfg.seed,
            data_dir=cfg.data_dir,
        )
    else:
        pairs = []
    added = store.add_pairs(pairs)
    total = len(store.all_pairs())
    if not total:
        raise UserError(f"--db {cfg.db} holds no pairs: give --pairs FILE or --runs RUN...")
    undecided = sum(not p.decided for p in pairs)
    print(
        f"label: {added} new pair(s) ({undecided} of {len(pairs)} given undecided by execution); {total} in {cfg.db}"
    )
    import uvicorn
    from execrl.reports.labelling.app import create_app

    print(f"label: serving on http://{cfg.host}:{cfg.port}/ (links: `execrl label add-user NAME --db {cfg.db}`)")
    sys.stdout.flush()
    uvicorn.run(create_app(cfg.db, cfg.k), host=cfg.host, port=cfg.port, log_level="warning")
    return 0


def add_user(argv: list[str]) -> int:
    cfg = parse(AddUserConfig, argv)
    token = _store(cfg.db, must_exist=False).add_labeller(cfg.name)
    print(f"{cfg.url.rstrip('/')}/l/{token}")
    return 0


def export(argv: list[str]) -> int:
    cfg = parse(ExportConfig, argv)
    if cfg.out.exists() and not cfg.force:
        raise UserError(f"{cfg.out} exists; pass --force to overwrite it")
    from execrl.reports.labelling.export import export_rows

    store = _store(cfg.db)
    done = export_rows(store.all_pairs(), store.all_labels(), cfg.keep_ties, cfg.min_labellers)
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = cfg.out.with_name(cfg.out.name + ".tmp")
    tmp.write_text("".join(json.dumps(row) + "\n" for row in done.rows), encoding="utf-8")
    tmp.replace(cfg.out)  # whole or not at all, as runfolder.write_json does for JSON
    left = ", ".join(f"{n} {why}" for why, n in sorted(done.left_out.items())) or "none"
    print(f"label export: {len(done.rows)} pair(s) -> {cfg.out}; left out: {left}")
    return 0


def stats(argv: list[str]) -> int:
    cfg = parse(StatsConfig, argv)
    from execrl.reports.labelling.export import label_stats

    store = _store(cfg.db)
    figures = label_stats(store.all_pairs(), store.all_labels())
    if cfg.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{figures['labels']} labels on {figures['pairs_labelled']} pairs")
    for name, n in sorted(figures["labels_per_person"].items()):
        print(f"  {name}: {n}")
    print(f"Fleiss' kappa: {figures['fleiss_kappa']} over {figures['fleiss_pairs']} pairs with two or more labels")
    for who, v in figures["cohen_kappa"].items():
        print(f"Cohen's kappa {who}: {v['kappa']} over {v['pairs']} pairs")
    ex = figures["execution"]
    print(
        f"with execution (pairs it decides): {ex['agree']} agree, {ex['disagree']} disagree, "
        f"{ex['tie_or_both_bad']} tie/both bad of {ex['labels_on_decided_pairs']} labels: agreement {ex['agreement']}"
    )
    return 0


SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("execrl.reports.labelling.cli:serve", "serve the labelling page over pairs from a file or run folders"),
    "add-user": ("execrl.reports.labelling.cli:add_user", "register a labeller; prints their personal link"),
    "export": ("execrl.reports.labelling.cli:export", "labels -> TRL preference rows for `execrl train rm`"),
    "stats": ("execrl.reports.labelling.cli:stats", "labels per person, Fleiss'/Cohen's kappa, agreement with tests"),
}


def main(argv: list[str]) -> int:
    return dispatch("execrl label", SUBCOMMANDS, argv)
