"""People's labels out: TRL's preference rows for the reward model, and the figures of `execrl label stats`.

An exported row is TRL's preference format (`prompt`, `chosen`, `rejected`; https://huggingface.co/docs/trl/
dataset_formats#preference) plus `pair_id`, `task_id`, `label` (`preference`, or `tie` / `both_bad` when those
are kept: `chosen` is then A and `rejected` B, and `execrl train rm` leaves them out), `n_labellers` and
`agreement` (the share of the pair's labellers who made the majority choice). A pair whose labellers split
evenly between two choices has no majority and is left out.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from execrl.reports.labelling.agreement import cohen_kappa, fleiss_kappa, majority
from execrl.reports.labelling.pairs import Pair
from execrl.reports.labelling.store import CHOICES, Label


@dataclass(frozen=True)
class Exported:
    rows: list[dict[str, Any]]
    left_out: dict[str, int]
    """Why pairs with labels were not exported: `no_majority`, `tie`, `both_bad`, `too_few_labellers`."""


def export_rows(pairs: Sequence[Pair], labels: Sequence[Label], keep_ties: bool = False, min_labellers: int = 1):
    """The preference rows of every labelled pair (see the module docstring), in the pairs' order."""
    by_pair: dict[str, list[str]] = defaultdict(list)
    for label in labels:
        by_pair[label.pair_id].append(label.choice)
    rows, left_out = [], Counter()
    for pair in pairs:
        choices = by_pair.get(pair.pair_id)
        if not choices:
            continue
        if len(choices) < min_labellers:
            left_out["too_few_labellers"] += 1
            continue
        top, agreement = majority(choices)
        if top is None:
            left_out["no_majority"] += 1
            continue
        if top in ("tie", "both_bad") and not keep_ties:
            left_out[top] += 1
            continue
        chosen, rejected = (pair.b, pair.a) if top == "b" else (pair.a, pair.b)
        rows.append(
            {
                "pair_id": pair.pair_id,
                "task_id": pair.task_id,
                "prompt": pair.prompt,
                "chosen": chosen.response,
                "rejected": rejected.response,
                "label": "preference" if top in ("a", "b") else top,
                "n_labellers": len(choices),
                "agreement": round(agreement, 4),
            }
        )
    return Exported(rows, dict(left_out))


def _clean(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def label_stats(pairs: Sequence[Pair], labels: Sequence[Label]) -> dict[str, Any]:
    """Labels per person; Fleiss' kappa over all pairs with two or more labels; Cohen's kappa for each two
    labellers on the pairs both labelled; and, on the pairs execution decides, how often people agree with it
    (the passing program chosen), choose the failing one, or call it a tie / both bad."""
    by_pair: dict[str, dict[str, str]] = defaultdict(dict)
    for label in labels:
        by_pair[label.pair_id][label.labeller] = label.choice
    people = sorted({label.labeller for label in labels})
    table = [[list(v.values()).count(c) for c in CHOICES] for v in by_pair.values()]
    cohen = {}
    for i, first in enumerate(people):
        for second in people[i + 1 :]:
            both = [v for v in by_pair.values() if first in v and second in v]
            if both:
                kappa = cohen_kappa([v[first] for v in both], [v[second] for v in both])
                cohen[f"{first} / {second}"] = {"pairs": len(both), "kappa": _clean(kappa)}
    with_execution: Counter[str] = Counter()
    for pair in pairs:
        if not pair.decided:
            continue
        passing = "a" if pair.a.passed else "b"
        for choice in by_pair.get(pair.pair_id, {}).values():
            agrees = "agree" if choice == passing else "disagree" if choice in ("a", "b") else "undecided"
            with_execution[agrees] += 1
    decided_labels = sum(with_execution.values())
    return {
        "labels": len(labels),
        "pairs_labelled": len(by_pair),
        "labels_per_person": dict(Counter(label.labeller for label in labels)),
        "fleiss_kappa": _clean(fleiss_kappa(table)),
        "fleiss_pairs": sum(sum(row) >= 2 for row in table),
        "cohen_kappa": cohen,
        "execution": {
            "labels_on_decided_pairs": decided_labels,
            "agree": with_execution["agree"],
            "disagree": with_execution["disagree"],
            "tie_or_both_bad": with_execution["undecided"],
            "agreement": _clean(with_execution["agree"] / decided_labels if decided_labels else math.nan),
        },
    }
