"""Flag groups that several commands share, defined once, and the one way a command reads its config.

A command's config is one flat dataclass (STYLE.md 4) composed from the groups below by inheritance, so the
flag names stay flat (`--workers`, not `--sandbox.workers`) and each group is documented once. The groups are
keyword-only dataclasses, so a command may list its own required fields after them.

- `parse(cls, argv, renamed=...)`: tyro over the dataclass, after refusing flags that were renamed (a user's
  old script gets the new name in one line, not tyro's "unrecognized arguments").
- `load_from_flags(flags)`: the problems a command's `ProblemFlags` name (a benchmark split or a problem file);
  every command that takes problems calls it.
- `from_mapping(cls, data, where)`: the same dataclass from a YAML mapping (the pipeline's `--config`): an
  unknown key is an error naming it and the closest known key, a value of the wrong type one naming the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from execrl.benchmarks.errors import UserError
from execrl.benchmarks.problem import Problem
from execrl.benchmarks.registry import BenchmarkName
from execrl.harness.records import Limits

T = TypeVar("T")

Precision = Literal["auto", "fp32", "bf16", "fp16"]
"""Numeric precision of a model: auto (bf16, or fp16 without bf16 support, on GPU; fp32 on CPU) or a fixed one."""
LiveCodeBenchRelease = Literal[
    "release_v1", "release_v2", "release_v3", "release_v4", "release_v5", "release_v6", "release_latest"
]
"""The release versions of `execrl.benchmarks.livecodebench.RELEASES` (a test keeps the two in step)."""
SandboxName = Literal["local", "subprocess", "docker", "ray"]
"""The sandbox backends of `execrl.harness.sandbox.backends.BACKENDS` (a test keeps the two in step)."""


@dataclass(kw_only=True)
class OutputFlags:
    out: Path
    """Output folder (see the description for what it holds); rerunning on the same folder resumes."""
    force: bool = False
    """Start over: delete this command's outputs in --out, even when they belong to a run of other settings."""


@dataclass(kw_only=True)
class ProblemFlags:
    benchmark: BenchmarkName | None = None
    """The benchmark whose problems are used (or give --problems)."""
    problems: Path | None = None
    """A problem file instead of --benchmark: JSONL, one problem per line (README, "Your own problems")."""
    split: str | None = None
    """Benchmark split (default: the benchmark's test split)."""
    variant: Literal["full", "sanitized"] | None = None
    """MBPP only: full (974 problems) or sanitized (427)."""
    difficulty: Literal["introductory", "interview", "competition", "easy", "medium", "hard"] | None = None
    """APPS (introductory, interview, competition) and LiveCodeBench (easy, medium, hard): keep this difficulty."""
    data_dir: Path | None = None
    """Local data folder for MBPP/APPS/HumanEval+/MBPP+/LiveCodeBench (default: $EXECRL_DATA_DIR)."""
    online: bool = False
    """Allow the Hugging Face hub (data, and models for generate)."""
    release: LiveCodeBenchRelease | None = None
    """LiveCodeBench only: the release version (default: the latest the data dir holds; online release_latest, v6)."""
    since: str | None = None
    """LiveCodeBench only: keep problems whose contest date is on or after this day (YYYY-MM-DD), e.g. the day after a model's training cut-off."""  # noqa: E501
    until: str | None = None
    """LiveCodeBench only: keep problems whose contest date is on or before this day (YYYY-MM-DD)."""
    limit: int | None = None
    """Use only the first N problems."""


BenchmarkFlags = ProblemFlags
"""The group's earlier name (it took only --benchmark); kept so code written against it still imports."""


def load_from_flags(
    flags: ProblemFlags, *, splits: Mapping[str, str] | None = None, default: str | None = None, synth_seed: int = 0
) -> list[Problem]:
    """The problems a command's `ProblemFlags` name: a benchmark split, or a problem file.

    `splits` (benchmark -> split) replaces `flags.split` (a trainer's train or held-out split); `default` is the
    benchmark used when neither --benchmark nor --problems is given (the trainers: synth), else that is an error;
    `synth_seed` seeds synth. A trainer's `benchmark` may be a list (`--benchmark mbpp apps`): the problems of
    each, in that order, with --variant applied to MBPP, --difficulty to APPS and --limit to each. The data
    folder is `flags.data_dir`, else $EXECRL_DATA_DIR. Every mistake is a UserError naming the flag.
    """
    from execrl.benchmarks.problem_file import load_problem_file

    if flags.limit is not None and flags.limit < 0:
        raise UserError(f"--limit must be >= 0, got {flags.limit}")
    names = [flags.benchmark] if isinstance(flags.benchmark, str) else list(flags.benchmark or [])
    if flags.problems is not None:
        if names:
            raise UserError("give --benchmark or --problems, not both")
        given = [f"--{name}" for name in ("split", "variant", "difficulty") if getattr(flags, name) is not None]
        if given or flags.online:
            raise UserError(f"{', '.join(given or ['--online'])}: for --benchmark only, not --problems")
        problems = load_problem_file(flags.problems)
        return problems if flags.limit is None else problems[: flags.limit]
    names = names or ([default] if default else [])
    if not names:
        raise UserError("give --benchmark NAME or --problems FILE.jsonl")
    if len(set(names)) < len(names):
        raise UserError(f"--benchmark {' '.join(names)}: a benchmark is named twice")
    # Each option goes to the benchmark it applies to; one that applies to none of them is refused.
    for option, owners in (("variant", ("mbpp",)), ("difficulty", ("apps", "livecodebench"))):
        if getattr(flags, option) is not None and not set(owners) & set(names):
            raise UserError(f"--{option} applies to {' or '.join(owners)} only, not {' '.join(names)}")
    problems = []
    for name in names:
        problems += _load_benchmark(flags, name, (splits or {}).get(name, flags.split), synth_seed)
    return problems


def _load_benchmark(flags: ProblemFlags, name: str, split: str | None, synth_seed: int) -> list[Problem]:
    from execrl.benchmarks.registry import default_data_dir, load_problems

    if name == "synth":  # through load_synth itself: the registry knows no synth seed
        from execrl.benchmarks.synth import load_synth

        try:
            problems = load_synth(split or "test", seed=synth_seed)
        except ValueError as error:
            raise UserError(f"synth: {error}") from error
        return problems if flags.limit is None else problems[: flags.limit]
    lcb = name == "livecodebench"
    return load_problems(
        name, split, flags.data_dir or default_data_dir(), variant=flags.variant if name == "mbpp" else None,
        difficulty=flags.difficulty if name in ("apps", "livecodebench") else None, limit=flags.limit,
        online=flags.online, release=flags.release if lcb else None, since=flags.since if lcb else None,
        until=flags.until if lcb else None,
    )  # fmt: skip


@dataclass(kw_only=True)
class SandboxFlags:
    sandbox: SandboxName = "local"
    """Where programs run: local (warm forked workers), subprocess (a fresh interpreter per program), docker (a container per worker; build its image once with `execrl sandbox build-image`) or ray (a warm local pool on every node of a Ray cluster; needs the `ray` extra)."""  # noqa: E501
    workers: int | None = None
    """Sandbox worker processes (default: all CPU cores). With --sandbox ray: workers per Ray actor, and one actor per that many CPUs of each node (default: one actor per node, with a worker per CPU of the node)."""  # noqa: E501
    ray_address: str | None = None
    """With --sandbox ray: the cluster to join (`ray.init(address=...)`, e.g. `10.0.0.1:6379` or `auto`); default: $RAY_ADDRESS or a cluster started on this machine, else a local Ray instance."""  # noqa: E501
    timeout: float = Limits.timeout
    """Wall-clock seconds per test."""


@dataclass(kw_only=True)
class DeviceFlags:
    device: str = "auto"
    """auto (CUDA when present), cpu, cuda or cuda:N."""
    precision: Precision = "auto"
    """auto (bf16/fp16 on GPU, fp32 on CPU), fp32, bf16 or fp16."""


def check_renamed(argv: Sequence[str], renamed: Mapping[str, str]) -> None:
    """Refuse a flag that was renamed, naming its new name (`renamed`: old flag -> what to use instead)."""
    for arg in argv:
        old = arg.split("=", 1)[0]
        if old in renamed:
            raise UserError(f"{old} was renamed: use {renamed[old]}")


def parse(
    cls: type[T],
    argv: Sequence[str],
    *,
    description: str | None = None,
    renamed: Mapping[str, str] | None = None,
    default: T | None = None,
) -> T:
    """`cls` from command-line flags (tyro: a field's docstring is its help, a Literal lists its choices)."""
    import tyro

    check_renamed(argv, renamed or {})
    return tyro.cli(cls, args=list(argv), description=description or cls.__doc__, default=default)


def _type_name(kind: Any) -> str:
    if typing.get_origin(kind) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(kind))
    return getattr(kind, "__name__", str(kind))


def coerce(kind: Any, value: Any, where: str) -> Any:
    """`value` as `kind` (the field's type), or a UserError naming `where` and the expected type."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return coerce(option, value, where)
            except UserError:
                continue
    elif origin is Literal:
        if value in args:
            return value
        close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UserError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}{hint}")
    elif kind is type(None):
        if value is None:
            return None
    elif kind is bool:
        if isinstance(value, bool):
            return value
    elif kind in (int, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and (kind is float or value == int(value)):
            return kind(value)
    elif kind in (str, Path):
        if isinstance(value, (str, Path)):
            return kind(value)
    elif origin in (list, tuple) and isinstance(value, (list, tuple)):
        item = args[0] if args else Any  # list[X] and tuple[X, ...]
        return origin(coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    elif origin is dict and isinstance(value, Mapping):
        key_type, value_type = args or (Any, Any)
        return {coerce(key_type, k, where): coerce(value_type, v, f"{where}.{k}") for k, v in value.items()}
    elif kind is Any:
        return value
    elif dataclasses.is_dataclass(kind) and isinstance(value, Mapping):
        return from_mapping(kind, value, where)
    raise UserError(f"{where}: expected {_type_name(kind)}, got {value!r}")


def check_keys(known: Sequence[str], given: Mapping[str, Any], where: str) -> None:
    """Refuse keys of `given` not in `known`, naming the key, the closest known key and all of them."""
    for key in given:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UserError(f"{where}: unknown key {key!r}; {hint}(known: {', '.join(known)})")


def from_mapping(cls: type[T], data: Mapping[str, Any], where: str, **fixed: Any) -> T:
    """`cls(**fixed, **data)` with every key of `data` checked against `cls`'s fields and types first.

    `fixed` are fields the caller sets (a stage's input and output folders); they may not be given in `data`.
    """
    if not isinstance(data, Mapping):
        raise UserError(f"{where}: expected a mapping of keys to values, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls) if f.name not in fixed]  # type: ignore[arg-type]
    check_keys(known, data, where)
    values = {key: coerce(hints[key], value, f"{where}.{key}") for key, value in data.items()}
    missing = [
        f.name
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.name not in values and f.name not in fixed
        and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]  # fmt: skip
    if missing:
        raise UserError(f"{where}: missing key(s) {', '.join(missing)}")
    return cls(**fixed, **values)
