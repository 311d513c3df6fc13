"""The registry: one entry to every benchmark, task-id normalisation, data-dir errors."""

from __future__ import annotations

import shutil

import pytest
from execrl.benchmarks.datafiles import DataError
from execrl.benchmarks.registry import default_data_dir, load_problems, normalize_task_id


@pytest.mark.parametrize(
    ("benchmark", "raw", "expected"),
    [
        ("mbpp", 12, "Mbpp/12"),
        ("mbpp", "12", "Mbpp/12"),
        ("mbpp", "mbpp/12", "Mbpp/12"),
        ("mbpp", "Mbpp/012", "Mbpp/12"),
        ("apps", 5, "APPS/5"),
        ("apps", "APPS/5", "APPS/5"),
        ("humaneval", "humaneval/3", "HumanEval/3"),
        ("synth", "add_3", "synth/add_3"),
    ],
    ids=[
        "bare int",
        "bare digits",
        "lower-case prefix",
        "leading zero",
        "apps bare int",
        "apps canonical",
        "humaneval case-insensitive prefix",
        "synth gets its prefix",
    ],
)
def test_task_ids_normalise_to_the_canonical_form(benchmark, raw, expected):
    assert normalize_task_id(benchmark, raw) == expected


@pytest.mark.parametrize(
    ("benchmark", "raw"),
    [("humaneval", 3), ("mbpp", "APPS/3"), ("apps", "five"), ("nope", 1)],
    ids=["bare number is ambiguous for humaneval", "another benchmark's prefix", "not a number", "unknown benchmark"],
)
def test_malformed_task_ids_are_refused(benchmark, raw):
    with pytest.raises(ValueError):
        normalize_task_id(benchmark, raw)


def test_humaneval_needs_no_data_dir_and_limit_keeps_the_first():
    problems = load_problems("humaneval", limit=5)
    assert [p.task_id for p in problems] == [f"HumanEval/{n}" for n in range(5)]


def test_default_splits_and_options_reach_the_loaders(shared_data_dir):
    assert len(load_problems("mbpp", data_dir=shared_data_dir)) == 500
    assert len(load_problems("mbpp", "all", shared_data_dir, variant="sanitized")) == 427
    assert len(load_problems("apps", "train", shared_data_dir, difficulty="interview")) == 51


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("nope",), {}, "unknown benchmark 'nope'"),
        (("humaneval", "train"), {}, "HumanEval has only 'test'"),
        (("apps", "train"), {"variant": "full"}, "--variant applies to mbpp only"),
        (("mbpp",), {"difficulty": "interview"}, "--difficulty applies to apps and livecodebench only"),
        (("humaneval",), {"challenge_tests": True}, "challenge tests exist for mbpp only"),
    ],
    ids=[
        "unknown benchmark",
        "humaneval has one split",
        "variant on apps",
        "difficulty on mbpp",
        "challenge tests on humaneval",
    ],
)
def test_options_that_do_not_apply_are_refused(shared_data_dir, args, kwargs, message):
    with pytest.raises(DataError, match=message):
        load_problems(*args, data_dir=shared_data_dir, **kwargs)


@pytest.mark.parametrize(
    ("data_dir", "message"),
    [(None, "no data directory for mbpp/mbpp.jsonl"), ("/nonexistent/execrl-data", "does not exist")],
    ids=["offline without a data dir", "data dir that is not there"],
)
def test_missing_data_explains_the_layout_and_how_to_provide_it(data_dir, message):
    with pytest.raises(DataError, match=message) as caught:
        load_problems("mbpp", data_dir=data_dir)
    text = str(caught.value)
    assert "mbpp/sanitized-mbpp.json" in text and "apps/{train,test}.jsonl" in text
    assert "--data-dir DIR" in text and "EXECRL_DATA_DIR" in text and "--online" in text


def test_missing_file_in_an_existing_dir_is_named(tmp_path):
    (tmp_path / "mbpp").mkdir()
    with pytest.raises(DataError, match=f"missing data file {tmp_path}/mbpp/sanitized-mbpp.json"):
        load_problems("mbpp", data_dir=tmp_path, variant="sanitized")


def test_altered_file_warns_with_both_digests_and_still_loads(tmp_path, shared_data_dir):
    (tmp_path / "mbpp").mkdir()
    copy = tmp_path / "mbpp" / "mbpp.jsonl"
    shutil.copyfile(shared_data_dir / "mbpp" / "mbpp.jsonl", copy)
    data = bytearray(copy.read_bytes())
    data[data.index(b"minimum cost path")] = ord("M")  # one byte, the JSON stays valid
    copy.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match=r"mbpp\.jsonl: sha256 [0-9a-f]{64} differs from the pinned ccf64cea") as seen:
        problems = load_problems("mbpp", "prompt", tmp_path)
    assert problems[0].prompt.startswith("Write a function to find the Minimum cost path")
    assert len(seen) == 1


def test_unreadable_file_is_a_data_error(tmp_path):
    (tmp_path / "mbpp").mkdir()
    (tmp_path / "mbpp" / "mbpp.jsonl").mkdir()  # a folder where the file should be
    with pytest.raises(DataError, match="missing data file"):
        load_problems("mbpp", data_dir=tmp_path)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", None), ("/data/x", "/data/x")],
    ids=["unset means none", "set names the dir"],
)
def test_default_data_dir_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("EXECRL_DATA_DIR", value)
    result = default_data_dir()
    assert (str(result) if result else None) == expected
