"""Labels out: TRL preference rows with labeller count and agreement, and the stats figures."""

from __future__ import annotations

import pytest
from execrl.reports.labelling.export import export_rows, label_stats
from execrl.reports.labelling.store import Label, Store


def _label_all(store: Store, votes: dict[str, list[str]]) -> None:
    """votes[name] = that labeller's choice for pairs 0..4 in serving order."""
    for name, choices in votes.items():
        who = store.labeller(store.add_labeller(name))
        for choice in choices:
            pair = store.next_pair(who, k=3)
            store.record_label(who, pair.pair_id, choice, "")


def test_export_writes_the_majority_preference_with_count_and_agreement(store: Store) -> None:
    _label_all(store, {"ann": ["a", "b", "tie", "a", "a"], "bob": ["a", "b", "tie", "b", "both_bad"],
                       "cy": ["b", "b", "a", "tie", "both_bad"]})  # fmt: skip
    pairs = store.all_pairs()
    done = export_rows(pairs, store.all_labels())
    assert [(r["task_id"], r["label"], r["n_labellers"], r["agreement"]) for r in done.rows] == [
        ("t/0", "preference", 3, pytest.approx(0.6667)),
        ("t/1", "preference", 3, 1.0),
    ]
    assert done.rows[0]["chosen"] == pairs[0].a.response and done.rows[1]["chosen"] == pairs[1].b.response
    assert done.left_out == {"tie": 1, "no_majority": 1, "both_bad": 1}
    kept = export_rows(pairs, store.all_labels(), keep_ties=True)
    assert [r["label"] for r in kept.rows] == ["preference", "preference", "tie", "both_bad"]
    assert export_rows(pairs, store.all_labels(), min_labellers=4).left_out == {"too_few_labellers": 5}


def test_stats_count_labels_agreement_between_people_and_with_execution(store: Store) -> None:
    # pairs 0, 2, 4 are decided (A passed, B failed); 1, 3 both passed
    _label_all(store, {"ann": ["a", "a", "a", "b", "tie"], "bob": ["a", "a", "a", "b", "tie"]})
    figures = label_stats(store.all_pairs(), store.all_labels())
    assert figures["labels_per_person"] == {"ann": 5, "bob": 5}
    assert figures["fleiss_kappa"] == 1.0 and figures["cohen_kappa"]["ann / bob"] == {"pairs": 5, "kappa": 1.0}
    assert figures["execution"] == {"labels_on_decided_pairs": 6, "agree": 4, "disagree": 0, "tie_or_both_bad": 2,
                                    "agreement": pytest.approx(0.6667)}  # fmt: skip


def test_stats_of_no_labels_are_empty_not_an_error(store: Store) -> None:
    figures = label_stats(store.all_pairs(), [])
    assert figures["labels"] == 0 and figures["fleiss_kappa"] is None and figures["execution"]["agreement"] is None
    assert Label  # the record type the store returns
