"""execrl: evaluate code-generation models in a hack-proof sandbox, and train them on the same verdict.

The rooms install under this one namespace (the folders stay at the repository's top level):
`execrl.benchmarks` (problems), `execrl.harness` (sandbox, generation, scoring, the two stages),
`execrl.trainers` (SFT, reward model, critic, PPO, reward functions) and `execrl.reports`.

The names below are the public Python API. They load on first use, so `import execrl` stays cheap
(no torch, no sandbox start):

    import execrl
    problems = execrl.load_problems("humaneval", limit=2)
    programs = [p.prompt + p.solutions[0] for p in problems]  # HumanEval's canonical bodies
    results = execrl.execute_many(problems, programs)         # ExecResult per program: .verdict, .tests
    rewards = execrl.REWARDS["binary"](problems, programs, results)
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("execrl")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"

# public name -> "module:attribute", imported on first access (PEP 562 module __getattr__)
_API = {
    # problems
    "Problem": "execrl.benchmarks.problem:Problem",
    "TestKind": "execrl.benchmarks.problem:TestKind",
    "load_problems": "execrl.benchmarks.registry:load_problems",
    # running programs and their verdicts
    "Verdict": "execrl.harness.records:Verdict",
    "Limits": "execrl.harness.records:Limits",
    "ExecResult": "execrl.harness.records:ExecResult",
    "SandboxPool": "execrl.harness.sandbox.pool:SandboxPool",
    "open_pool": "execrl.harness.sandbox.pool:open_pool",
    "execute_many": "execrl.harness.sandbox.pool:execute_many",
    "evaluate": "execrl.harness.evaluate:evaluate",
    "pass_at_k": "execrl.harness.scoring.passk:pass_at_k",
    # rewards
    "REWARDS": "execrl.trainers.rewards:REWARDS",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    target = _API.get(name)
    if target is None:
        raise AttributeError(f"module 'execrl' has no attribute {name!r}")
    module, _, attribute = target.partition(":")
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
