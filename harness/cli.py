"""The `execrl` command: one subcommand per stage.

Each subcommand lives in its own module with a `main(argv)` function; this file only dispatches,
so `execrl evaluate` never imports torch and `--help` stays fast. It is also the one place where a user
mistake (`execrl.benchmarks.errors.UserError`, raised anywhere below a command) becomes one line on stderr,
`execrl COMMAND: message`, and exit status 2: no command catches user errors itself.
"""

from __future__ import annotations

import importlib
import sys

from execrl.benchmarks.errors import UserError

# name -> (module, one-line summary). Nested groups (report, train) dispatch the same way.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("execrl.trainers.cli", "training stages: sft, rm (reward model), critic, ppo"),
    "generate": (
        "execrl.trainers.critic_sampling:generate_main",  # plain sampling is execrl.harness.generate
        "sample completions for a benchmark or problem file from a model: samples.jsonl (resumable; --strategy)",
    ),
    "evaluate": ("execrl.harness.evaluate", "run a samples file in the sandbox: results.jsonl, metrics.json (pass@k)"),
    "serve": (
        "execrl.trainers.serve",
        "HTTP reward server: OpenRLHF /get_reward, SandboxFusion /run_code, /v1/execute (the serve extra)",
    ),
    "report": ("execrl.reports.cli", "reports: compare two runs, leaderboard of runs, CI regression check"),
    "label": ("execrl.reports.labelling.cli", "human feedback: people judge pairs of programs on a web page"),
    "pipeline": (
        "execrl.trainers.pipeline",
        "the main job: tiny model -> SFT -> PPO -> evaluate both -> report (resumable)",
    ),
    "sandbox": ("execrl.harness.sandbox.docker_engine", "sandbox set-up: build-image (the docker backend's image)"),
}


def dispatch(prog: str, commands: dict[str, tuple[str, str]], argv: list[str]) -> int:
    """Run `argv[0]` of `commands` (name -> ("module" or "module:function", summary)) on `argv[1:]`.

    The command groups (`execrl report`, `execrl train`) dispatch through this too, so a `UserError` is
    reported with the full command name (`execrl train sft: ...`) and exit status 2.
    """
    width = max(len(name) for name in commands)
    usage = "\n".join(
        [f"usage: {prog} COMMAND [ARGS...]", "", "commands:"]
        + [f"  {name:<{width}}  {summary}" for name, (_, summary) in commands.items()]
        + ["", f"Run `{prog} COMMAND --help` for a command's options."]
    )
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(usage)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in commands:
        print(f"{prog}: unknown command {name!r}\n\n{usage}", file=sys.stderr)
        return 2
    module, _, function = commands[name][0].partition(":")
    entry = getattr(importlib.import_module(module), function or "main")
    sys.argv[0] = f"{prog} {name}"  # argparse/tyro name the program after argv[0] in usage lines
    try:
        return int(entry(rest) or 0)
    except UserError as e:
        print(f"{prog} {name}: {e}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    return dispatch("execrl", COMMANDS, list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
