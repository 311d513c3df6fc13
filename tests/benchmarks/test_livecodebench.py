"""LiveCodeBench loader on fixture files: releases, the date window, stdin and functional tests, packed tests,
and hostile rows (the packed field is a pickle: nothing in it may run)."""

from __future__ import annotations

import base64
import json
import pickle
import zlib
from pathlib import Path
from typing import get_args

import pytest
from execrl.benchmarks.datafiles import DataError
from execrl.benchmarks.livecodebench import RELEASES, livecodebench_problem
from execrl.benchmarks.packed_tests import PackedTestsError, inflate, unpack_tests
from execrl.benchmarks.problem import TestKind
from execrl.benchmarks.prompts import build_prompt, chat_messages
from execrl.benchmarks.registry import load_problems, normalize_task_id
from execrl.harness.flags import LiveCodeBenchRelease

from tests.benchmarks.upstream_fixtures import LCB_V1, lcb_row, pack, write_livecodebench


def _ids(tmp_path: Path, **kwargs) -> list[str]:
    return [p.task_id for p in load_problems("livecodebench", data_dir=tmp_path, **kwargs)]


def test_each_release_adds_its_file_and_latest_is_everything(tmp_path: Path) -> None:
    write_livecodebench(tmp_path)
    assert _ids(tmp_path, release="release_v1") == ["LCB/abc301_a", "LCB/2727"]
    # no release named: the latest the data dir holds (here v2)
    assert _ids(tmp_path) == _ids(tmp_path, release="release_v2") == ["LCB/abc301_a", "LCB/2727", "LCB/1873_A"]
    with pytest.raises(DataError, match="missing data file .*test3.jsonl"):
        load_problems("livecodebench", data_dir=tmp_path, release="release_v3")
    with pytest.raises(DataError, match="unknown livecodebench release"):
        load_problems("livecodebench", data_dir=tmp_path, release="v9")
    assert set(get_args(LiveCodeBenchRelease)) == set(RELEASES)


def test_the_date_window_keeps_problems_published_after_a_cut_off(tmp_path: Path) -> None:
    write_livecodebench(tmp_path)
    assert _ids(tmp_path, since="2023-10-15") == ["LCB/2727", "LCB/1873_A"]  # inclusive
    assert _ids(tmp_path, since="2023-10-16") == ["LCB/1873_A"]
    assert _ids(tmp_path, until="2023-10-15") == ["LCB/abc301_a", "LCB/2727"]
    assert _ids(tmp_path, since="2023-08-01", until="2024-01-01") == ["LCB/2727"]
    assert _ids(tmp_path, difficulty="hard") == ["LCB/1873_A"]
    with pytest.raises(DataError, match="YYYY-MM-DD"):
        load_problems("livecodebench", data_dir=tmp_path, since="last year")
    with pytest.raises(DataError, match="is after"):
        load_problems("livecodebench", data_dir=tmp_path, since="2024-01-02", until="2024-01-01")
    with pytest.raises(DataError, match="livecodebench only"):
        load_problems("mbpp", data_dir=tmp_path, since="2024-01-01")


def test_stdin_and_functional_problems_public_tests_first(tmp_path: Path) -> None:
    write_livecodebench(tmp_path)
    by_id = {p.task_id: p for p in load_problems("livecodebench", data_dir=tmp_path)}
    stdin, functional = by_id["LCB/abc301_a"], by_id["LCB/2727"]
    assert stdin.test_kind is TestKind.STDIO and stdin.inputs == ("1 2\n", "10 20\n", "0 0\n")
    assert stdin.outputs[0] == "3\n" and stdin.metadata["n_public"] == 1 and stdin.difficulty == "easy"
    assert functional.test_kind is TestKind.CALL and functional.fn_name == "addTwo"
    assert functional.inputs == ([1, 2], [5, 7]) and functional.outputs == (3, 12)
    assert functional.metadata["platform"] == "leetcode"
    assert functional.metadata["contest_date"] == "2023-10-15T00:00:00"
    assert functional.metadata["timeout"] == 6.0 and functional.metadata["program_timeout"] == 7.0 * 2 + 5
    assert "class Solution" in build_prompt(functional) and "### Question:" in build_prompt(functional)
    assert "standard input" in chat_messages(stdin)[1]["content"]
    assert normalize_task_id("livecodebench", "abc301_a") == "LCB/abc301_a"
    assert normalize_task_id("livecodebench", "LCB/2727") == "LCB/2727"


def test_packed_tests_round_trip_and_json_text_is_read_as_is() -> None:
    cases = [{"input": "1\n", "output": "2\n", "testtype": "stdin"}]
    assert unpack_tests(pack(cases)) == cases
    assert unpack_tests(json.dumps(cases)) == cases


class _Boom:
    """Unpickling this calls os.system: the attack a doctored data file would carry."""

    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/execrl-lcb-pwned",))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


PACKED_ATTACKS = [
    ("not base64 at all", "!!! not base64 ###", "neither JSON nor base64"),
    ("base64 of something that is not zlib", _b64(b"plain bytes"), "not zlib data"),
    ("a truncated zlib stream", _b64(zlib.compress(pickle.dumps("[]"))[:-6]), "truncated"),
    ("a pickle whose REDUCE runs os.system", _b64(zlib.compress(pickle.dumps(_Boom()))), "refused pickle opcode"),
    ("a pickle naming a class (GLOBAL)", _b64(zlib.compress(b"cos\nsystem\n.")), "refused pickle opcode GLOBAL"),
    ("a pickle building an object (protocol 4 STACK_GLOBAL)",
     _b64(zlib.compress(pickle.dumps(PackedTestsError("x"), protocol=4))), "refused pickle opcode"),
    ("a pickle of a dict, not the JSON text", _b64(zlib.compress(pickle.dumps({"input": "1"}))), "holds a dict"),
    ("a pickle of text that is not JSON", _b64(zlib.compress(pickle.dumps("not json"))), "not JSON"),
    ("a pickle cut short", _b64(zlib.compress(pickle.dumps("[]")[:-2])), "not a readable pickle"),
    ("a number instead of a string", 12345, "expected a string"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "field", "message"), PACKED_ATTACKS, ids=[a[0] for a in PACKED_ATTACKS])
def test_hostile_packed_tests_are_refused_and_nothing_in_them_runs(what: str, field, message: str) -> None:
    with pytest.raises(PackedTestsError, match=message):
        unpack_tests(field)
    assert not Path("/tmp/execrl-lcb-pwned").exists(), what


def test_a_zip_bomb_stops_at_the_limit() -> None:
    with pytest.raises(PackedTestsError, match="inflates past"):
        inflate(zlib.compress(b"0" * 10_000_000), limit=1_000_000)


_OK = LCB_V1[0]
ROW_ATTACKS = [
    ("a packed field holding a REDUCE pickle", {**_OK, "private_test_cases": PACKED_ATTACKS[3][1]}),
    ("public tests that are not JSON", {**_OK, "public_test_cases": "[{"}),
    ("public tests that are an object", {**_OK, "public_test_cases": json.dumps({"input": "1"})}),
    ("a test whose input is a number", {**_OK, "public_test_cases": json.dumps([{"input": 1, "output": "1",
                                                                                 "testtype": "stdin"}])}),
    ("an unknown test type", {**_OK, "public_test_cases": json.dumps([{"input": "1", "output": "1",
                                                                       "testtype": "shell"}])}),
    ("stdin and functional tests mixed", {**_OK, "public_test_cases": json.dumps([{"input": "1", "output": "1",
                                                                                   "testtype": "functional"}])}),
    ("a functional problem without func_name", {**lcb_row("9", "2024-01-01", [("1\n2", "3")], functional="f"),
                                                "metadata": "{}"}),
    ("a func_name that is not a name", {**lcb_row("9", "2024-01-01", [("1\n2", "3")], functional="f"),
                                        "metadata": json.dumps({"func_name": "os.system"})}),
    ("a functional input line that is not JSON", lcb_row("9", "2024-01-01", [("1\n{", "3")], functional="f")),
    ("a contest date that is not a date", {**_OK, "contest_date": "yesterday"}),
    ("an unknown difficulty", {**_OK, "difficulty": "impossible"}),
    ("a question id that is a list", {**_OK, "question_id": ["x"]}),
    ("no tests at all", {**_OK, "public_test_cases": "[]", "private_test_cases": "[]"}),
    ("metadata that is a list", {**_OK, "metadata": "[]"}),
]  # fmt: skip


@pytest.mark.parametrize(("what", "row"), ROW_ATTACKS, ids=[a[0] for a in ROW_ATTACKS])
def test_hostile_rows_are_skipped_with_a_warning_naming_the_row(what: str, row: dict) -> None:
    with pytest.warns(UserWarning, match="skipped"):
        assert livecodebench_problem(row) is None, what
    assert not Path("/tmp/execrl-lcb-pwned").exists()


def test_a_hostile_row_does_not_stop_the_others_from_loading(tmp_path: Path) -> None:
    write_livecodebench(tmp_path, v1=[ROW_ATTACKS[0][1], LCB_V1[1]])
    with pytest.warns(UserWarning, match="abc301_a: skipped, PackedTestsError: refused pickle opcode"):
        assert _ids(tmp_path) == ["LCB/2727", "LCB/1873_A"]
