"""Training data: prompt masking, truncation, padding, JSONL errors, held-out split, result joins, output folders."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from execrl.benchmarks.errors import UserError
from execrl.harness import runfolder  # noqa: E402
from execrl.harness.records import ExecResult, Verdict  # noqa: E402
from execrl.trainers.data import (  # noqa: E402
    IGNORE_INDEX,
    RUN_STAMP,
    claim_output,
    collate_sft,
    encode_scored,
    encode_sft,
    finish_output,
    label_samples,
    read_jsonl,
    split_holdout,
)
from execrl.trainers.tiny import build_tiny_model  # noqa: E402

PROMPT = "# return x doubled\ndef double(x):\n"
COMPLETION = "    return x * 2\n"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("tok")
    build_tiny_model(folder, [PROMPT + COMPLETION] * 4, vocab_size=280, n_layer=1, d_model=32, max_positions=64)
    return AutoTokenizer.from_pretrained(folder)


def test_prompt_tokens_are_masked_and_completion_tokens_are_labelled(tokenizer) -> None:
    row = encode_sft(tokenizer, PROMPT, COMPLETION, max_length=64)
    n_prompt = len(tokenizer(PROMPT, add_special_tokens=False)["input_ids"])
    assert row["labels"][:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert row["labels"][n_prompt:] == row["input_ids"][n_prompt:]
    assert row["input_ids"][-1] == tokenizer.eos_token_id
    assert tokenizer.decode(row["input_ids"][n_prompt:-1]) == COMPLETION


def test_long_rows_are_cut_at_the_end_and_prompt_only_rows_are_dropped(tokenizer) -> None:
    n_prompt = len(tokenizer(PROMPT, add_special_tokens=False)["input_ids"])
    cut = encode_sft(tokenizer, PROMPT, COMPLETION * 10, max_length=n_prompt + 3)
    assert len(cut["input_ids"]) == len(cut["labels"]) == n_prompt + 3
    assert cut["labels"][-3:] != [IGNORE_INDEX] * 3
    assert encode_sft(tokenizer, PROMPT, COMPLETION, max_length=n_prompt) is None


def test_scored_text_keeps_its_end_when_too_long(tokenizer) -> None:
    full = encode_scored(tokenizer, PROMPT, COMPLETION, max_length=1000)
    assert encode_scored(tokenizer, PROMPT, COMPLETION, max_length=5) == full[-5:]


def test_collate_pads_labels_with_ignore_index_and_masks_padding(tokenizer) -> None:
    short = encode_sft(tokenizer, PROMPT, "    return 0\n", 64)
    long = encode_sft(tokenizer, PROMPT, COMPLETION * 3, 64)
    batch = collate_sft([short, long], pad_id=tokenizer.pad_token_id)
    n = len(short["input_ids"])
    assert batch["input_ids"].shape == batch["labels"].shape == (2, len(long["input_ids"]))
    assert batch["attention_mask"][0].tolist() == [1] * n + [0] * (batch["input_ids"].shape[1] - n)
    assert (batch["labels"][0, n:] == IGNORE_INDEX).all()
    assert (batch["input_ids"][0, n:] == tokenizer.pad_token_id).all()


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"prompt": "a", "completion": "b"}\n{oops\n', ":2: not valid JSON"),  # names the broken line
        ('{"prompt": "a"}\n', ":1: missing string field(s) completion"),  # a required key is absent
        ('["prompt", "completion"]\n', ":1: expected a JSON object"),  # valid JSON of the wrong shape
        ("\n\n", "no rows"),  # an empty file trains nothing
    ],
    ids=["bad-json", "missing-field", "not-an-object", "empty"],
)
def test_read_jsonl_rejects_bad_input_naming_the_line(content: str, needle: str, tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(content)
    with pytest.raises(UserError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        read_jsonl(path, required=("prompt", "completion"))


def test_holdout_split_is_disjoint_seeded_and_sized() -> None:
    rows = list(range(50))
    train, held = split_holdout(rows, 0.1, seed=3)
    assert len(held) == 5 and sorted(train + held) == rows
    assert split_holdout(rows, 0.1, seed=3) == (train, held)
    assert split_holdout(rows, 0.1, seed=4) != (train, held)
    assert len(split_holdout(rows[:3], 0.01, seed=0)[1]) == 1


def test_results_rows_are_matched_by_task_and_completion_id() -> None:
    samples = [
        {"task_id": "t/0", "completion": "a"},
        {"task_id": "t/0", "completion": "b"},
        {"task_id": "t/1", "solution": "c"},
    ]
    results = [
        {"task_id": "t/1", "completion_id": 0, "verdict": "failed"},
        {"task_id": "t/0", "completion_id": 1, "verdict": "passed"},
    ]
    labelled = label_samples(samples, results)
    assert [(s["completion"], s["completion_id"], v) for s, v in labelled] == [("b", 1, "passed"), ("c", 0, "failed")]


def test_exec_results_are_matched_by_position() -> None:
    samples = [{"task_id": "t/0", "completion": "a"}, {"task_id": "t/0", "completion": "b"}]
    results = [ExecResult(Verdict.SYNTAX_ERROR), ExecResult(Verdict.PASSED)]
    assert [v for _, v in label_samples(samples, results)] == ["syntax_error", "passed"]
    with pytest.raises(ValueError, match="2 samples but 1 results"):
        label_samples(samples, results[:1])


def test_output_folder_is_done_resumed_refused_or_forced(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="no run_config.json"):  # a folder of something else
        claim_output(other, {"lr": 1}, force=False)
    out = tmp_path / "out"
    assert claim_output(out, {"lr": 1}, force=False) == "fresh"
    assert runfolder.read_json(out / RUN_STAMP) == {"lr": 1}  # the started run's stamp
    (out / "train_log.jsonl").write_text("{}\n")
    assert claim_output(out, {"lr": 1}, force=False) == "resume"
    with pytest.raises(UserError, match="other settings"):
        claim_output(out, {"lr": 2}, force=False)
    finish_output(out, {"lr": 1})
    assert claim_output(out, {"lr": 1}, force=False) == "done"
    with pytest.raises(UserError, match="other settings"):
        claim_output(out, {"lr": 2}, force=False)
    assert claim_output(out, {"lr": 2}, force=True) == "fresh"
    assert not (out / "train_log.jsonl").exists() and not (out / "train_config.json").exists()
