"""Python literals read from benchmark data without running it: `python_literal(node)`, `assigned_literal`.

evalplus's hub rows (`evalplus/humanevalplus`, `evalplus/mbppplus`) keep their test inputs and expected
outputs inside a `test` program, written with Python's `repr` (`inputs = [[1, 2.0], ...]`). `ast.literal_eval`
almost reads them, but `repr` of an infinity is `inf`, of a NaN `nan` and of an empty set `set()`, which are
names and calls, not literals. This reader takes literals plus exactly those three spellings (the test programs
import `inf` from `math` for them) and refuses everything else, so no code from a data file ever runs.
"""

from __future__ import annotations

import ast
import math
from typing import Any

_NAMES = {"inf": math.inf, "nan": math.nan, "True": True, "False": False, "None": None}
_EMPTY_CALLS = {"set": set, "frozenset": frozenset, "tuple": tuple, "list": list, "dict": dict}
MAX_DEPTH = 200


class NotALiteral(ValueError):
    """The expression is not a plain Python literal."""


def python_literal(node: ast.AST, depth: int = 0) -> Any:
    """The value of a literal expression: constants, containers, signs, complex sums, `inf`, `nan`, `set()`."""
    if depth > MAX_DEPTH:
        raise NotALiteral("nested too deeply")
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in _NAMES:
        return _NAMES[node.id]
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = [python_literal(item, depth + 1) for item in node.elts]
        return {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)](items)
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            raise NotALiteral("a ** unpacking in a dict")
        pairs = zip(node.keys, node.values, strict=True)
        return {python_literal(k, depth + 1): python_literal(v, depth + 1) for k, v in pairs}  # type: ignore[arg-type]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = python_literal(node.operand, depth + 1)
        if type(value) not in (int, float, complex):
            raise NotALiteral("a sign in front of a non-number")
        return -value if isinstance(node.op, ast.USub) else +value
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        # repr of a complex number: (1+2j), (-0-1j)
        left, right = python_literal(node.left, depth + 1), python_literal(node.right, depth + 1)
        if type(left) not in (int, float) or type(right) is not complex:
            raise NotALiteral("a sum that is not a complex literal")
        return left + right if isinstance(node.op, ast.Add) else left - right
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _EMPTY_CALLS:
        if node.args or node.keywords:
            raise NotALiteral(f"{node.func.id}() with arguments")
        return _EMPTY_CALLS[node.func.id]()
    raise NotALiteral(f"{type(node).__name__} is not a literal")


def assigned_literal(tree: ast.AST, name: str) -> tuple[bool, Any]:
    """(found, value) of the first `name = <literal>` anywhere in `tree` (module level or inside a function)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return True, python_literal(node.value)
    return False, None
