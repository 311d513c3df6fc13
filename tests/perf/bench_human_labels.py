"""Reward model on human labels plus execution pairs vs on execution pairs alone, scored on held-out human labels.

    .venv/bin/python tests/perf/bench_human_labels.py --out /tmp/bench-labels [--train-problems 200] [--seeds 3]

THE HUMAN LABELS HERE ARE SIMULATED: this workplace has no people to label. Two simulated labellers follow one
documented rule (`simulated_choice`): the program that passes more tests is better; between programs that pass
the same tests, the shorter one (fewer non-blank characters) is better; equal length is a tie; each labeller
then flips A/B at random with probability `--flip` (default 0.1), independently. The rule stands for what
people add where tests cannot decide (here: redundant code), and the figures say how much of such a judgement
the reward model picks up from the labels, not how real people would label.

Everything else is the real path: synth problems get four programs each (the correct body, the same body with
redundant lines, a subtly wrong body, and the wrong body with the same redundant lines), `execrl evaluate` runs
them in the sandbox, `execrl label`'s `pairs_from_runs` draws pairs (80% undecided by execution, the
default), the simulated labellers label them through the labelling database (`Store.next_pair` /
`record_label`, as the page does, k=2), `export_rows` writes TRL preference rows, and `execrl train rm` trains
(A) on `--pairs-from-runs TRAIN_RUN` alone and (B) on `--pairs EXPORT --pairs-from-runs TRAIN_RUN`. Both are
scored on the exported majority labels of pairs from *test* problems (no test problem shares its function and
constants with a train problem), overall and split into pairs execution decides and pairs it does not.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

from execrl.benchmarks.synth import load_synth
from execrl.harness.cli import main as execrl
from execrl.reports.labelling.export import export_rows
from execrl.reports.labelling.pairs import Pair, pairs_from_runs
from execrl.reports.labelling.store import Store


def padded(body: str) -> str:
    """The same body with redundant lines: a dead store first and the last `return X` through a temporary."""
    lines = body.rstrip("\n").split("\n")
    last = lines[-1]
    if last.startswith("    return "):
        lines[-1:] = [f"    result = {last[len('    return ') :]}", "    return result"]
    return "    unused = None\n" + "\n".join(lines) + "\n"


def samples_for(problems: list) -> list[dict]:
    rows = []
    for p in problems:
        def_line, correct = p.solutions[0].split("\n", 1)
        wrong = p.metadata["wrong_solutions"][0].split("\n", 1)[1]
        for body in (correct, padded(correct), wrong, padded(wrong)):  # whole programs, as `execrl generate` writes
            rows.append({"task_id": p.task_id, "completion": f"{def_line}\n{body}"})
    return rows


def simulated_choice(pair: Pair, rng: random.Random, flip: float) -> str:
    """The simulated labeller's rule (see the module docstring): more tests passed, then shorter, then tie."""
    passed_a = sum(t["verdict"] == "passed" for t in pair.a.tests)
    passed_b = sum(t["verdict"] == "passed" for t in pair.b.tests)
    size_a, size_b = (len("".join(s.program.split())) for s in (pair.a, pair.b))
    if passed_a != passed_b:
        choice = "a" if passed_a > passed_b else "b"
    elif size_a != size_b:
        choice = "a" if size_a < size_b else "b"
    else:
        return "tie"
    return {"a": "b", "b": "a"}[choice] if rng.random() < flip else choice


def run_split(out: Path, split: str, n_problems: int, max_pairs: int, flip: float, seed: int) -> tuple[Path, Path]:
    """Evaluate the split's programs, draw pairs, label them by two simulated labellers; (run folder, export)."""
    problems = load_synth(split)[:n_problems]
    samples = out / f"{split}_samples.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in samples_for(problems)))
    run = out / f"{split}_run"
    argv = ["evaluate", "--benchmark", "synth", "--split", split, "--samples", str(samples), "--out", str(run)]
    assert execrl([*argv, "--workers", "2"]) == 0
    for stale in out.glob(f"{split}_labels.sqlite*"):  # labels are redrawn each time (the run folder resumes)
        stale.unlink()
    store = Store(out / f"{split}_labels.sqlite")
    store.add_pairs(pairs_from_runs([run], max_pairs=max_pairs, undecided_share=0.8, pairs_per_task=2, seed=seed))
    rng = random.Random(f"{split}/{seed}")
    for name in ("sim-1", "sim-2"):
        who = store.labeller(store.add_labeller(name))
        while (pair := store.next_pair(who, k=2)) is not None:
            store.record_label(who, pair.pair_id, simulated_choice(pair, rng, flip), "simulated")
    export = out / f"{split}_human.jsonl"
    done = export_rows(store.all_pairs(), store.all_labels())
    export.write_text("".join(json.dumps(r) + "\n" for r in done.rows))
    print(f"{split}: {len(done.rows)} human-labelled pairs exported (left out: {done.left_out})", file=sys.stderr)
    return run, export


def accuracy(rm: Path, rows: list[dict], decided: dict[str, bool]) -> dict[str, float]:
    from execrl.trainers.reward_model import RewardModel

    model = RewardModel.load(rm, device="cpu")
    prompts = [r["prompt"] for r in rows]
    chosen = model.score(prompts, [r["chosen"] for r in rows])
    rejected = model.score(prompts, [r["rejected"] for r in rows])
    right = [bool(c > r) for c, r in zip(chosen, rejected, strict=True)]

    def share(keep: list[bool]) -> float:
        picked = [x for x, k in zip(right, keep, strict=True) if k]
        return round(sum(picked) / len(picked), 4) if picked else float("nan")

    kinds = [decided[r["pair_id"]] for r in rows]
    return {"all": share([True] * len(rows)), "decided": share(kinds), "undecided": share([not k for k in kinds])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train-problems", type=int, default=200)
    parser.add_argument("--test-problems", type=int, default=100)
    parser.add_argument("--train-pairs", type=int, default=300)
    parser.add_argument("--test-pairs", type=int, default=200)
    parser.add_argument("--flip", type=float, default=0.1)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    train_run, train_human = run_split(args.out, "train", args.train_problems, args.train_pairs, args.flip, 0)
    test_run, test_human = run_split(args.out, "test", args.test_problems, args.test_pairs, args.flip, 1)
    held = [json.loads(line) for line in test_human.read_text().splitlines()]
    decided = {p.pair_id: p.decided for p in Store(args.out / "test_labels.sqlite").all_pairs()}

    from execrl.trainers.tiny import build_tiny_model

    corpus = [p.prompt + p.solutions[0] for p in load_synth("train")[: args.train_problems]]
    tiny = build_tiny_model(args.out / "tiny", corpus, vocab_size=600, n_layer=2, d_model=64, max_positions=128)
    conditions = {
        "execution pairs only": ["--pairs-from-runs", str(train_run)],
        "human labels + execution pairs": ["--pairs", str(train_human), "--pairs-from-runs", str(train_run)],
    }
    results: dict[str, list[dict]] = {name: [] for name in conditions}
    for seed in range(args.seeds):
        for name, data in conditions.items():
            rm = args.out / f"rm-{len(data)}-{seed}"
            argv = ["train", "rm", "--model", str(tiny), *data, "--out", str(rm), "--seed", str(seed)]
            argv += ["--epochs", str(args.epochs), "--max-length", "128", "--lr", "1e-3", "--eval-share", "0.05"]
            assert execrl([*argv, "--device", args.device]) == 0
            results[name].append(accuracy(rm, held, decided))
            print(f"seed {seed}, {name}: {results[name][-1]}", file=sys.stderr, flush=True)
    summary = {
        name: {k: round(statistics.mean(r[k] for r in runs), 4) for k in ("all", "decided", "undecided")}
        | {"per_seed_all": [r["all"] for r in runs]}
        for name, runs in results.items()
    }
    report = {
        "held_out_pairs": len(held),
        "held_out_decided": sum(decided[r["pair_id"]] for r in held),
        "seeds": args.seeds,
        "flip": args.flip,
        "accuracy_on_held_out_simulated_human_labels": summary,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (args.out / "bench_human_labels.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
