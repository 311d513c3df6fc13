"""The wire between the judge and the sandboxed child: a tagged JSON codec and length-prefixed frames.

Values cross the process boundary as plain data only — never pickle. The codec accepts exactly
None, bool, int, float (nan and infinities included), str, bytes, complex, list, tuple, dict (any
hashable plain keys), set and frozenset, checked with `type(x) is ...` so a subclass of a builtin
(with a rigged `__eq__`, say) is never mistaken for the builtin. Anything else is refused, or, when
the caller supplies `to_handle`, replaced by an opaque handle the other side can only refer back to.

Decoding builds fresh builtins and nothing else, so whatever the child claims, the judge compares
genuine `int`s, `str`s and `list`s. Depth, size and int width are capped on both ends, and the decoder
keeps a budget over the whole value (items, hash work, hash collisions across all its containers, time):
the judge's work on a reply is bounded, whatever the child sends (see `_Decoder`).

This module is imported by the sandboxed child (`harness/sandbox/child.py`), so it uses the stdlib only.

JSON shape: null/true/false/str and small ints and finite floats are themselves; a JSON list is a
Python list; every other value is a one-key object `{TAG: payload}`.
"""

from __future__ import annotations

import itertools
import json
import math
import operator
import os
import select
import struct
import time
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 100
"""Deepest nesting of containers either side accepts."""
MAX_ITEMS = 2_000_000
"""Most scalars and containers in one value (an int past 2**53 counts one more per 64 bits)."""
MAX_INT_BITS = 65_536
"""Widest int either side accepts (about 19,700 digits, far above the 4,300 that `int(str)` and JSON take):
arithmetic the trusted test code does on a wider one (a product, a division) would take seconds."""
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
        if -_SMALL_INT < x < _SMALL_INT:
            return x
        bits = x.bit_length()
        if bits > MAX_INT_BITS:
            raise WireError(f"int of more than {MAX_INT_BITS} bits")
        budget[0] -= bits // 64
        return {"I": hex(x)}
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


def decode(data: Any, from_handle: Callable[[int], Any] | None = None, deadline: float | None = None) -> Any:
    """The value `data` (as produced by `encode`) stands for; handles are resolved by `from_handle`.

    Raises `WireError` for anything malformed or over budget (`WireTimeout` past `deadline`, a
    `time.monotonic()` value), never another exception: a reply the codec refuses is the sender's failure.
    """
    if type(data) in _SCALARS:  # most replies: nothing to budget
        return data
    if type(data) is list and _SCALAR_SET.issuperset(map(type, data)):  # most others: a flat list, in C
        if len(data) >= MAX_ITEMS:
            raise WireError(f"value has more than {MAX_ITEMS} items")
        hashes = list(map(hash, data))
        if len(set(hashes)) < len(hashes) and _count_shared(hashes, data) > MAX_COLLIDING:
            raise WireError("values collide in hash (a value built to stall the judge)")
        return data
    decoder = _Decoder(from_handle, deadline)
    decoder.items_left -= 1
    try:
        value = decoder.value(data, 0)
        decoder.check_whole_value()
    except (RecursionError, MemoryError, OverflowError) as exc:
        raise WireError(f"value too large or deep to decode: {type(exc).__name__}") from None
    return value


class WireTimeout(WireError):
    """Decoding a value took past the caller's deadline."""


MAX_SHARED_HASH = 8
"""The most distinct values of one decoded value that may share a hash."""
MAX_COLLIDING = 1024
"""The most values of one decoded value that share their hash with a distinct other one."""
MAX_HASH_WORK = 16 * MAX_ITEMS
"""The most item visits spent hashing container members (a tuple's hash walks its members again at every
level it is nested in)."""
_CHECK_EVERY = 4096
"""Items between two looks at the clock."""


class _Decoder:
    """One decode: builds fresh builtins and keeps the budgets of the whole value, not of one container.

    Budgets: items (a big int counts one per 64 bits), depth, the bits of an int, hash work, time and hash
    collisions. Why collisions: putting n distinct values that share a hash into a set or dict costs O(n^2)
    comparisons in the judge, outside every deadline (the ints k * (2**61 - 1) all hash to 0), whether the
    decoder builds the set or the trusted test code does (`set(candidate(x))` on a list, `set(x for row in
    rows for x in row)` across containers), and nested (a set of frozensets whose members collide: each of
    many small sets is cheap alone, together they cost the judge ~30 minutes). So the members of every
    container, at every level, are registered with their hashes while decoding; a set, frozenset or dict is
    checked before it is built, and the whole value at the end. The value is refused, in linear time, if more
    than MAX_SHARED_HASH distinct values anywhere in it share one hash, or more than MAX_COLLIDING share
    theirs with a distinct other. Honest data never comes close: equal values may repeat freely, and the
    usual collisions are few and small (-1 and -2 share a hash, and so (-1, y) and (-2, y) do).
    """

    __slots__ = ("from_handle", "deadline", "items_left", "next_check", "hash_left", "members", "colliding")

    def __init__(self, from_handle: Callable[[int], Any] | None, deadline: float | None) -> None:
        self.from_handle = from_handle
        self.deadline = deadline
        self.items_left = MAX_ITEMS
        self.next_check = MAX_ITEMS - _CHECK_EVERY
        self.hash_left = MAX_HASH_WORK
        self.members: list[Any] = []
        """The members of every container so far, but lists, dicts and sets (never set members)."""
        self.colliding = 0
        """Members of the sets and dicts built so far that share their hash with a distinct other."""

    def checkpoint(self) -> None:
        """Called every _CHECK_EVERY items: the budgets of items and time."""
        if self.items_left < 0:
            raise WireError(f"value has more than {MAX_ITEMS} items")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise WireTimeout("decoding the value took past the deadline")
        self.next_check = self.items_left - _CHECK_EVERY

    def value(self, x: Any, depth: int) -> Any:
        """`x` decoded; the caller has counted it against the item budget."""
        t = type(x)
        if t in _SCALARS:
            return x  # a JSON int has at most 4,300 digits (json refuses more), far under MAX_INT_BITS
        if depth > MAX_DEPTH:
            raise WireError(f"value nested deeper than {MAX_DEPTH}")
        if t is list:
            start = self.items_left
            return self.register(self.items(x, depth), start)
        if t is not dict or len(x) != 1:
            raise WireError(f"malformed value of type {t.__name__}")
        ((tag, payload),) = x.items()
        try:
            return self.tagged(tag, payload, depth)
        except (TypeError, ValueError, LookupError) as exc:  # unhashable member, bad hex, unknown handle
            if isinstance(exc, WireError):
                raise
            raise WireError(f"malformed {str(tag)[:20]!r} payload: {str(exc)[:200]}") from None

    def items(self, payload: list[Any], depth: int) -> list[Any]:
        """A container's members decoded, counted first (scalars, most members, without a call)."""
        self.items_left -= len(payload)
        if self.items_left <= self.next_check:
            self.checkpoint()
        d = depth + 1
        return [v if type(v) in _SCALARS else self.value(v, d) for v in payload]

    def tagged(self, tag: Any, payload: Any, depth: int) -> Any:
        if tag == "I" and type(payload) is str:
            if len(payload) > MAX_INT_BITS // 4 + 3:  # hex digits, a sign and "0x"
                raise WireError(f"int of more than {MAX_INT_BITS} bits")
            self.items_left -= len(payload) // 16
            if self.items_left <= self.next_check:
                self.checkpoint()
            return int(payload, 16)
        if tag == "F" and payload in ("nan", "inf", "-inf"):
            return float(payload)
        if tag == "B" and type(payload) is str:
            return bytes.fromhex(payload)
        if tag == "H" and type(payload) is int:
            if self.from_handle is None:
                raise WireError("unexpected handle")
            return self.from_handle(payload)
        if type(payload) is not list:
            raise WireError(f"malformed {str(tag)[:20]!r} payload")
        start = self.items_left
        if tag == "D":  # [[key, value], ...]: the pairs are the wire's own lists, not values
            if not all(type(kv) is list and len(kv) == 2 for kv in payload):
                raise WireError("malformed dict item")
            keys = self.register(self.items([k for k, _ in payload], depth), start, hashed=True)
            values = self.register(self.items([v for _, v in payload], depth), start)  # `set(d.values())`
            return dict(zip(keys, values, strict=True))
        items = self.items(payload, depth)
        if tag == "T":
            return tuple(self.register(items, start))
        if tag == "S":
            return set(self.register(items, start, hashed=True))
        if tag == "Z":
            return frozenset(self.register(items, start, hashed=True))
        if tag == "C" and len(items) == 2 and all(type(v) in (int, float) for v in items):
            return complex(items[0], items[1])
        raise WireError(f"unknown tag {str(tag)[:20]!r}")

    def register(self, items: list[Any], start: int, hashed: bool = False) -> list[Any]:
        """Keep a container's members (decoded from `start`, an `items_left`) for the check of the whole value;
        check a container about to be `hashed` (a set, frozenset or dict) now, before it is built. Returns
        `items`."""
        if not items:
            return items
        if type(items[0]) in _UNHASHABLE:  # a list of lists, say: only its hashable members count
            members = [item for item in items if type(item) not in _UNHASHABLE]
            if not members:
                return items
        else:
            members = items
        self.hash_left -= start - self.items_left  # hashing walks each member's own subtree again, at most
        if self.hash_left < 0:
            raise WireError(f"value needs more than {MAX_HASH_WORK} steps of hashing")
        self.members += members
        if hashed:
            hashes = list(map(hash, members))  # a TypeError (an unhashable member) is a malformed payload
            if len(set(hashes)) < len(hashes):  # hash values are ints whose own hashes do not collide
                self.colliding += _count_shared(hashes, members)
                if self.colliding > MAX_COLLIDING:
                    raise WireError("values collide in hash (a value built to stall the judge)")
        return items

    def check_whole_value(self) -> None:
        """Refuse the value if members of its containers share hashes (see the class docstring): the test code
        may put any of them together in one set."""
        members = self.members
        try:
            hashes = list(map(hash, members))
        except TypeError:  # a list in a mixed container, or a tuple holding one: never a set member as it is
            members = [member for member in members if _hashable(member)]
            hashes = list(map(hash, members))
        if len(set(hashes)) < len(hashes) and _count_shared(hashes, members) > MAX_COLLIDING:
            raise WireError("values collide in hash (a value built to stall the judge)")


def _count_shared(hashes: list[int], members: list[Any]) -> int:
    """How many of `members` (with their `hashes`) share a hash with a distinct other member; raises WireError
    if more than MAX_SHARED_HASH distinct members share one. Linear time, and in C unless distinct members do
    share a hash (equal values repeat freely)."""
    last = dict(zip(hashes, members, strict=True))  # one member per hash
    same = list(map(operator.eq, members, map(last.__getitem__, hashes)))
    if all(same):  # every member equals the one kept for its hash
        return 0
    distinct: dict[int, list[Any]] = {}
    colliding = 0
    for code, member in itertools.compress(zip(hashes, members, strict=True), map(operator.not_, same)):
        seen = distinct.setdefault(code, [last[code]])
        if any(member is s or member == s for s in seen):
            continue  # an equal value again: free (at most MAX_SHARED_HASH comparisons)
        seen.append(member)
        colliding += 1
        if len(seen) > MAX_SHARED_HASH:
            raise WireError("values collide in hash (a value built to stall the judge)")
    return sum(len(seen) for seen in distinct.values() if len(seen) > 1)


def _hashable(item: Any) -> bool:
    try:
        hash(item)
    except TypeError:
        return False
    return True


_UNHASHABLE = (list, dict, set)
_SCALARS = (int, str, float, bool, type(None))
_SCALAR_SET = frozenset(_SCALARS)


def dumps(message: Any) -> bytes:
    """One frame: a 4-byte big-endian length, then the message as compact UTF-8 JSON."""
    body = _ENCODER.encode(message).encode()
    if len(body) > MAX_FRAME:
        raise WireError(f"frame of {len(body)} bytes exceeds {MAX_FRAME}")
    return _HEADER.pack(len(body)) + body


def loads(body: bytes) -> Any:
    """A frame's body as JSON (UTF-8 only); raises `WireError` (a ValueError) if malformed, too deep (the
    JSON scanner recurses) or too big for memory."""
    try:
        return _DECODER.decode(body.decode())
    except (ValueError, RecursionError, MemoryError) as exc:  # a UnicodeDecodeError is a ValueError
        raise WireError(f"malformed frame: {type(exc).__name__}: {str(exc)[:200]}") from None


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
    return loads(_read_exact(fd, size, deadline))


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
