"""TRL's real GRPOTrainer trains on the tiny model (CPU) with `trl_reward`, and the rewards it logs are the
sandbox's verdicts of the completions it sampled, recomputed here independently of TRL."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("transformers")

from datasets import Dataset  # noqa: E402
from execrl.benchmarks.problem_file import problem_from_row  # noqa: E402
from execrl.harness.problem_lookup import program_for  # noqa: E402
from execrl.harness.sandbox.pool import SandboxPool, execute_many  # noqa: E402
from execrl.harness.sandbox.shared_pool import close_shared  # noqa: E402
from execrl.trainers.integrations import trl_reward  # noqa: E402
from execrl.trainers.rewards import REWARDS  # noqa: E402
from execrl.trainers.tiny import build_tiny_model  # noqa: E402
from transformers import TrainerCallback  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

# Two stdio problems: any program that runs and prints nothing passes the first; nothing passes the second.
# Completions of 3 tokens are short enough that some parse (`x`, `1`, `pass`) and some do not: mixed verdicts.
ROWS = [
    {"prompt": "x = 1\n", "task_id": "quiet", "stdio": [{"input": "", "output": ""}]},
    {"prompt": "y = 2\n", "task_id": "never", "stdio": [{"input": "", "output": "never printed\n"}]},
]
CORPUS = ["x = 1\n", "y = 2\n", "print(x)\n", "def f(a):\n    return a\n", "pass\n", "z = x + y\n"] * 20


class KeepLogs(TrainerCallback):
    """Copies GRPOTrainer's completion log (prompt, completion, reward per function) after every step."""

    def __init__(self) -> None:
        self.trainer: GRPOTrainer | None = None
        self.steps: list[dict] = []

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201 - transformers' hook signature
        logs = self.trainer._logs
        self.steps.append({"prompt": list(logs["prompt"]), "completion": list(logs["completion"]),
                           "rewards": {k: list(v) for k, v in logs["rewards"].items()}})  # fmt: skip


@pytest.fixture(autouse=True)
def _fresh_shared_pool():
    yield
    close_shared()


def test_grpo_trainer_logs_the_sandbox_verdicts_of_its_sampled_completions(tmp_path: Path) -> None:
    model_dir = build_tiny_model(tmp_path / "tiny", CORPUS, n_layer=1, d_model=64, n_head=2, seed=0)
    reward_fn = trl_reward("coderl", workers=2)
    config = GRPOConfig(
        output_dir=str(tmp_path / "out"), use_cpu=True, max_steps=2, per_device_train_batch_size=8,
        num_generations=4, max_completion_length=3, logging_steps=1, report_to=[], save_strategy="no",
        learning_rate=1e-3, seed=0, bf16=False, fp16=False, dataloader_num_workers=0,
    )  # fmt: skip
    keep = KeepLogs()
    trainer = GRPOTrainer(
        model=str(model_dir), reward_funcs=[reward_fn], args=config,
        train_dataset=Dataset.from_list(ROWS * 4), callbacks=[keep],
    )  # fmt: skip
    keep.trainer = trainer
    trainer.train()

    assert len(keep.steps) == 2
    seen: set[float] = set()
    problems = {row["prompt"]: problem_from_row(row) for row in ROWS}
    with SandboxPool(2) as pool:
        for step, logged in enumerate(keep.steps):
            batch = [problems[p] for p in logged["prompt"]]
            programs = [program_for(p, c, chat=False) for p, c in zip(batch, logged["completion"], strict=True)]
            expected = REWARDS["coderl"](batch, programs, execute_many(batch, programs, pool=pool))
            got = logged["rewards"]["execrl_coderl"]
            assert len(got) == len(expected) == 8
            seen.update(got)
            for g, e in zip(got, expected, strict=True):
                assert (math.isnan(g) and e is None) or g == pytest.approx(e), (step, got, expected)
            history = [h for h in trainer.state.log_history if "rewards/execrl_coderl/mean" in h]
            assert history[step]["rewards/execrl_coderl/mean"] == pytest.approx(sum(expected) / len(expected))
    assert len(seen) >= 2, f"every sampled completion got the same reward {seen}: the check above proves little"
