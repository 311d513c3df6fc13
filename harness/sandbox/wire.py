"""The wire between the judge and the sandboxed child: a tagged JSON codec and length-prefixed frames.

Values cross the process boundary as plain data only — never pickle. The codec accepts exactly
None, bool, int, float (nan and infinities included), str, bytes, complex, list, tuple, dict (any
hashable plain keys), set and frozenset, checked with `type(x) is ...` so a subclass of a builtin
(with a rigged `__eq__`, say) is never mistaken for the builtin. Anything else is refused, or, when
the caller supplies `to_handle`, replaced by an opaque handle the other side can only refer back to.

Decoding builds fresh builtins and nothing else, so whatever the child claims, the judge compares
genuine `int`s, `str`s and `list`s. Depth and size are capped on both ends.

This module is imported by the sandboxed child (`harness/child.py`), so it uses the stdlib only.

JSON shape: null/true/false/str and small ints and finite floats are themselves; a JSON list is a
Python list; every other value is a one-key object `{TAG: payload}`.
"""

from __future__ import annotations

import json
import math
import os
import select
import struct
import time
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 100
"""Deepest nesting of containers either side accepts."""
MAX_ITEMS = 2_000_000
"""Most scalars and containers in one value."""
MAX_FRAME = 64 * 1024**2
"""Largest frame in bytes; a bigger one is a protocol violation by the sender."""

_SMALL_INT = 2**53
_HEADER = struct.Struct(">I")
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
"""Built once: `json.dumps` with non-default options builds a new encoder per call."""
_DECODER = json.JSONDecoder()


class WireError(ValueError):
    """A value that cannot cross the wire, or a malformed frame."""


class Handle:
    """An opaque reference to an object that lives on the other side of the wire."""

    __slots__ = ("id",)

    def __init__(self, id: int) -> None:
        self.id = id

    def __repr__(self) -> str:
        return f"Handle({self.id})"


def encode(value: Any, to_handle: Callable[[Any], Any] | None = None) -> Any:
    """The JSON-ready form of `value`.

    An object outside the codec is passed to `to_handle`, which returns either an int (the object
    becomes that handle) or a plain stand-in to encode instead (the child sends a `Counter` as the
    `dict` it compares equal to).
    """
    budget = [MAX_ITEMS]
    return _enc(value, to_handle, 0, budget)


def _enc(x: Any, to_handle: Callable[[Any], Any] | None, depth: int, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise WireError(f"value has more than {MAX_ITEMS} items")
    if depth > MAX_DEPTH:
        raise WireError(f"value nested deeper than {MAX_DEPTH}")
    t = type(x)
    if x is None or t is bool or t is str:
        return x
    if t is int:
        return x if -_SMALL_INT < x < _SMALL_INT else {"I": hex(x)}
    if t is float:
        return x if math.isfinite(x) else {"F": repr(x)}
    if t is Handle:
        return {"H": x.id}
    if t is bytes:
        return {"B": x.hex()}
    if t is complex:
        return {"C": [_enc(x.real, None, depth + 1, budget), _enc(x.imag, None, depth + 1, budget)]}
    if t is list:
        return [_enc(v, to_handle, depth + 1, budget) for v in x]
    if t is tuple:
        return {"T": [_enc(v, to_handle, depth + 1, budget) for v in x]}
    if t is set or t is frozenset:
        return {"S" if t is set else "Z": [_enc(v, to_handle, depth + 1, budget) for v in x]}
    if t is dict:
        d = depth + 1
        return {"D": [[_enc(k, to_handle, d, budget), _enc(v, to_handle, d, budget)] for k, v in x.items()]}
    if to_handle is not None:
        handle = to_handle(x)
        return {"H": handle} if type(handle) is int else _enc(handle, None, depth, budget)
    raise WireError(f"cannot send a value of type {t.__name__}")


def decode(data: Any, from_handle: Callable[[int], Any] | None = None) -> Any:
    """The value `data` (as produced by `encode`) stands for; handles are resolved by `from_handle`."""
    budget = [MAX_ITEMS]
    return _dec(data, from_handle, 0, budget)


COLLISION_CHECK = 1024
"""Containers larger than this are checked for hash collisions (`_spread`) before they are built."""
MAX_SHARED_HASH = 8
"""The most distinct values of one container that may share a hash."""


def _dec(x: Any, from_handle: Callable[[int], Any] | None, depth: int, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise WireError(f"value has more than {MAX_ITEMS} items")
    if depth > MAX_DEPTH:
        raise WireError(f"value nested deeper than {MAX_DEPTH}")
    t = type(x)
    if x is None or t is bool or t is str or t is float:
        return x
    if t is int:
        return x
    if t is list:
        return _spread([_dec(v, from_handle, depth + 1, budget) for v in x])
    if t is not dict or len(x) != 1:
        raise WireError(f"malformed value of type {t.__name__}")
    ((tag, payload),) = x.items()
    try:
        if tag == "I" and type(payload) is str:
            return int(payload, 16)
        if tag == "F" and payload in ("nan", "inf", "-inf"):
            return float(payload)
        if tag == "B" and type(payload) is str:
            return bytes.fromhex(payload)
        if tag == "H" and type(payload) is int:
            if from_handle is None:
                raise WireError("unexpected handle")
            return from_handle(payload)
        if type(payload) is not list:
            raise WireError(f"malformed {tag!r} payload")
        items = [_dec(v, from_handle, depth + 1, budget) for v in payload]
        if tag == "T":
            return tuple(_spread(items))
        if tag == "S":
            return set(_spread(items))
        if tag == "Z":
            return frozenset(_spread(items))
        if tag == "C" and len(items) == 2 and all(type(v) in (int, float) for v in items):
            return complex(items[0], items[1])
        if tag == "D":
            if not all(type(kv) is list and len(kv) == 2 for kv in items):
                raise WireError("malformed dict item")
            _spread([k for k, _ in items])
            return {k: v for k, v in items}
    except TypeError as exc:  # unhashable key or set member
        raise WireError(f"malformed {tag!r} payload: {exc}") from None
    raise WireError(f"unknown tag {tag!r}")


def _spread(keys: list[Any]) -> list[Any]:
    """Refuse values built to collide in hash: putting n distinct keys with one hash into a set or dict costs
    O(n^2) in the judge, outside every deadline (ints k * (2**61 - 1) all hash to 0), whether the decoder
    builds the set or the trusted test code does (`set(candidate(x))` on a list). So every big container is
    checked, in linear time: no hash may be shared by more than MAX_SHARED_HASH distinct values. Honest data
    never comes close (equal values may repeat freely; -1 and -2 share a hash, and that is two values).
    """
    if len(keys) <= COLLISION_CHECK:
        return keys
    buckets: dict[int, list[Any]] = {}
    for key in keys:
        try:
            code = hash(key)
        except TypeError:  # a list or dict inside: not hashable, never a set member
            continue
        buckets.setdefault(code, []).append(key)  # hash values are ints whose own hashes do not collide
    for bucket in buckets.values():
        if len(bucket) <= MAX_SHARED_HASH:
            continue
        distinct: list[Any] = []
        for key in bucket:
            if not any(key == seen for seen in distinct):
                distinct.append(key)
                if len(distinct) > MAX_SHARED_HASH:
                    raise WireError("values collide in hash (a value built to stall the judge)")
    return keys


def dumps(message: Any) -> bytes:
    """One frame: a 4-byte big-endian length, then the message as compact UTF-8 JSON."""
    body = _ENCODER.encode(message).encode()
    if len(body) > MAX_FRAME:
        raise WireError(f"frame of {len(body)} bytes exceeds {MAX_FRAME}")
    return _HEADER.pack(len(body)) + body


def loads(body: bytes) -> Any:
    """A frame's body as JSON (UTF-8 only); raises ValueError or RecursionError if malformed."""
    return _DECODER.decode(body.decode())  # a UnicodeDecodeError is a ValueError


def write_frame(fd: int, message: Any) -> None:
    """Write one frame to a blocking fd."""
    data = memoryview(dumps(message))
    while data:
        data = data[os.write(fd, data) :]


def read_frame(fd: int, deadline: float | None = None) -> Any:
    """Read one frame; `TimeoutError` past `deadline` (a `time.monotonic()` value), `EOFError` at EOF."""
    header = _read_exact(fd, _HEADER.size, deadline)
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME:
        raise WireError(f"frame of {size} bytes exceeds {MAX_FRAME}")
    body = _read_exact(fd, size, deadline)
    try:
        return loads(body)
    except (ValueError, RecursionError) as exc:
        raise WireError(f"malformed frame: {exc}") from None


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    while size:
        if deadline is not None:
            left = deadline - time.monotonic()
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            if left <= 0 or not poller.poll(left * 1000):
                raise TimeoutError("no reply before the deadline")
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the pipe")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
