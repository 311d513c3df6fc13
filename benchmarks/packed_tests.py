"""LiveCodeBench's packed private tests, decoded without running anything from the file: `unpack_tests(text)`.

The release rows (`livecodebench/code_generation_lite`) store `private_test_cases` either as JSON text or as
base64 of zlib of a *pickle* of that JSON text (LiveCodeBench's `CodeGenerationProblem.__post_init__`). Loading a
pickle from a data file runs whatever callables it names (`REDUCE` on `os.system`), so a doctored data file would
run code in the trusted process. Here the pickle must be plain data:

1. base64 is decoded strictly (`validate=True`), zlib is inflated to at most `MAX_BYTES` (a zip bomb stops there);
2. every opcode is checked before anything is built (`pickletools.genops` only parses): strings, numbers, None,
   booleans, lists, tuples, dicts, sets and the memo; `GLOBAL`, `STACK_GLOBAL`, `REDUCE`, `BUILD`, `INST`,
   `OBJ`, `NEWOBJ`, extension codes, persistent ids and out-of-band buffers are refused, naming the opcode;
3. the unpickler that then builds it refuses every class lookup and persistent id anyway (a second lock);
4. the result must be a `str`, which is parsed as JSON (LiveCodeBench's own payload is exactly that).

Any failure raises `PackedTestsError` with what was wrong; the loader skips that row with a warning.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import pickle
import pickletools
import zlib
from typing import Any

MAX_BYTES = 1024**3
"""Largest inflated payload (LiveCodeBench's biggest private test sets are tens of megabytes)."""

PLAIN_OPCODES = frozenset({
    "PROTO", "FRAME", "STOP", "MARK", "POP", "POP_MARK", "DUP", "MEMOIZE",
    "PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET",
    "NONE", "NEWTRUE", "NEWFALSE", "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4",
    "FLOAT", "BINFLOAT", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
    "STRING", "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
    "EMPTY_LIST", "APPEND", "APPENDS", "LIST", "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3",
    "EMPTY_DICT", "DICT", "SETITEM", "SETITEMS", "EMPTY_SET", "ADDITEMS", "FROZENSET",
})  # fmt: skip
"""Opcodes that only build plain values; everything else (calls, class lookups, buffers) is refused."""


class PackedTestsError(ValueError):
    """A packed test field that is not what LiveCodeBench writes, or not safe to read."""


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise PackedTestsError(f"the pickle names {module}.{name}; only plain data is read")

    def persistent_load(self, pid: Any) -> Any:
        raise PackedTestsError("the pickle holds a persistent id; only plain data is read")


def unpack_tests(text: Any) -> Any:
    """The JSON value of a `private_test_cases` field: JSON text as is, or base64(zlib(pickle(JSON text)))."""
    if not isinstance(text, str):
        raise PackedTestsError(f"expected a string, got {type(text).__name__}")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass  # not JSON: the packed form
    try:
        packed = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as error:
        raise PackedTestsError(f"neither JSON nor base64 ({error})") from None
    payload = plain_unpickle(inflate(packed))
    if not isinstance(payload, str):
        raise PackedTestsError(f"the pickle holds a {type(payload).__name__}, not the JSON text of the tests")
    try:
        return json.loads(payload)
    except (ValueError, RecursionError) as error:
        raise PackedTestsError(f"the unpacked tests are not JSON ({str(error)[:120]})") from None


def inflate(packed: bytes, limit: int = MAX_BYTES) -> bytes:
    """zlib-decompress at most `limit` bytes; more is refused as a bomb, a truncated stream as corrupt."""
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(packed, limit)
    except zlib.error as error:
        raise PackedTestsError(f"not zlib data ({error})") from None
    if inflater.unconsumed_tail:
        raise PackedTestsError(f"inflates past {limit:,} bytes")
    if not inflater.eof:
        raise PackedTestsError("the zlib stream is truncated")
    return data


def plain_unpickle(data: bytes) -> Any:
    """Unpickle `data` after checking that every opcode only builds plain values."""
    try:
        for opcode, _, position in pickletools.genops(data):
            if opcode.name not in PLAIN_OPCODES:
                raise PackedTestsError(f"refused pickle opcode {opcode.name} at byte {position}: only plain data")
        return _PlainUnpickler(io.BytesIO(data)).load()
    except PackedTestsError:
        raise
    except (pickle.UnpicklingError, ValueError, EOFError, IndexError, KeyError, TypeError, MemoryError) as error:
        raise PackedTestsError(f"not a readable pickle ({type(error).__name__}: {str(error)[:120]})") from None
