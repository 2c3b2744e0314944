"""What travels between the parent and its worker or client processes, and how.

A message is framed as an 8-byte little-endian length followed by that many bytes. The bytes
hold a JSON header describing the message, then the raw bytes of every array in it. Nothing
is pickled: a peer can send numbers, strings, lists, dicts and numeric arrays, never code, so
a misbehaving client cannot make the server run anything (and the receiver checks the length
before reading the body, so a peer cannot make it allocate without bound).

    frame = encode(("fit", params, {"lr": 0.1}))     # bytes, ready for a socket
    decode(frame[HEADER.size:])                      # -> ["fit", array([...]), {"lr": 0.1}]

Tuples arrive as lists; numpy scalars as Python numbers.
"""
from __future__ import annotations

import json
import math
import struct

import numpy as np

HEADER = struct.Struct("<Q")  # the frame's length prefix
_JSON_LENGTH = struct.Struct("<I")
_ARRAY_KINDS = "biuf"  # bool, signed and unsigned ints, floats: no objects, no strings


class WireError(ValueError):
    """A message cannot be encoded, or the bytes received are not a message."""


def encode(message) -> bytes:
    """Return the frame (length prefix included) that carries ``message``."""
    arrays: list[np.ndarray] = []
    try:
        header = json.dumps(_describe(message, arrays), separators=(",", ":")).encode()
    except (TypeError, ValueError, RecursionError) as error:
        raise WireError(f"cannot send {type(message).__name__}: {error}") from None
    body = [_JSON_LENGTH.pack(len(header)), header, *(a.tobytes() for a in arrays)]
    length = sum(len(part) for part in body)
    return HEADER.pack(length) + b"".join(body)


def encoded_size(message) -> int:
    """``len(encode(message))``, computed without copying the arrays' bytes: what sending
    ``message`` costs, for runners that do not send it (the in-process simulation)."""
    arrays: list[np.ndarray] = []
    try:
        header = json.dumps(_describe(message, arrays), separators=(",", ":")).encode()
    except (TypeError, ValueError, RecursionError) as error:
        raise WireError(f"cannot send {type(message).__name__}: {error}") from None
    return HEADER.size + _JSON_LENGTH.size + len(header) + sum(a.nbytes for a in arrays)


def decode(body) -> object:
    """Return the message carried by ``body`` (a frame without its length prefix)."""
    body = memoryview(body)
    try:
        (n_header,) = _JSON_LENGTH.unpack_from(body)
        header = json.loads(bytes(body[_JSON_LENGTH.size:_JSON_LENGTH.size + n_header]))
        offset = [_JSON_LENGTH.size + n_header]
        return _rebuild(header, body, offset)
    except (struct.error, ValueError, TypeError, KeyError, IndexError, RecursionError) as error:
        raise WireError(f"not a message ({type(error).__name__}: {error})") from None


def _describe(value, arrays):
    """A JSON-able description of ``value``; its arrays are appended to ``arrays``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else {"~float": repr(value)}
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        if type(value) is not np.ndarray or value.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(f"only plain numeric arrays travel, not {type(value).__name__} "
                            f"of dtype {value.dtype}")
        arrays.append(np.ascontiguousarray(value))
        return {"~array": [value.dtype.str, list(value.shape)]}
    if isinstance(value, (list, tuple)):
        return [_describe(item, arrays) for item in value]
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise TypeError("dict keys must be strings")
        return {"~dict": {key: _describe(item, arrays) for key, item in value.items()}}
    raise TypeError(f"values of type {type(value).__name__} do not travel")


def _rebuild(node, body, offset):
    if isinstance(node, list):
        return [_rebuild(item, body, offset) for item in node]
    if not isinstance(node, dict):
        return node
    if "~float" in node:
        return float(node["~float"])
    if "~dict" in node:
        return {key: _rebuild(item, body, offset) for key, item in node["~dict"].items()}
    dtype_text, shape = node["~array"]
    dtype = np.dtype(dtype_text)
    if dtype.kind not in _ARRAY_KINDS or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ValueError(f"bad array description {node!r}")
    n_bytes = dtype.itemsize * math.prod(shape)
    if offset[0] + n_bytes > len(body):
        raise ValueError("the message ends inside an array")
    array = np.frombuffer(body[offset[0]:offset[0] + n_bytes], dtype=dtype).reshape(shape).copy()
    offset[0] += n_bytes
    return array
