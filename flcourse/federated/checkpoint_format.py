"""The checkpoint file's format: a preamble, then two slots written in turn, in place.

    FLCOURSE CHECKPOINT 1\\n            magic line with the format version
    slots 2 <capacity>\\n                 then padding to 64 bytes
    slot 0, slot 1 (capacity bytes each): b"SLOT", <8-byte sequence>, <8-byte length>,
        <sha256 of sequence, length and body>, body = <8-byte length><JSON header><raw arrays>

No pickle anywhere: the header is JSON, the arrays raw little-endian bytes. See notebook 05.
"""
from __future__ import annotations

import hashlib
import json
import math
import struct

import numpy as np

from .history import plain

FORMAT_VERSION = 1
MAGIC = b"FLCOURSE CHECKPOINT "
PREAMBLE = 64  # bytes before slot 0
SLOT = struct.Struct("<4sQQ32s")  # tag, sequence, body length, checksum
TAG = b"SLOT"


def preamble(capacity: int) -> bytes:
    return (b"%s%d\nslots 2 %d\n" % (MAGIC, FORMAT_VERSION, capacity)).ljust(PREAMBLE - 1) + b"\n"


def slot_bytes(sequence: int, body: bytes) -> bytes:
    digest = hashlib.sha256(struct.pack("<QQ", sequence, len(body)) + body).digest()
    return SLOT.pack(TAG, sequence, len(body), digest) + body


def encode_state(header: dict, arrays: dict) -> bytes:
    """The body of a state slot: an 8-byte length, the JSON header, the raw arrays."""
    arrays = {name: np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")) for name, a in arrays.items()}
    if any(a.dtype.hasobject for a in arrays.values()):
        raise TypeError("A checkpoint stores numeric arrays only (no pickled objects).")
    layout = [[name, a.dtype.str, list(a.shape)] for name, a in arrays.items()]
    text = json.dumps(dict(header, format_version=FORMAT_VERSION, arrays=layout), default=plain).encode()
    return b"".join([struct.pack("<Q", len(text)), text, *(a.tobytes() for a in arrays.values())])


def newest_slot(data: bytes, fail) -> tuple[int, bytes, bool]:
    """(sequence, body, whether a newer slot was torn) of the newest whole slot in ``data``."""
    capacity = read_preamble(data, fail)
    whole, torn = [], []
    for index in range(2):
        slot = data[PREAMBLE + index * capacity:PREAMBLE + (index + 1) * capacity]
        if len(slot) < SLOT.size or slot[:4] != TAG:
            continue
        _, sequence, length, digest = SLOT.unpack_from(slot)
        body = slot[SLOT.size:SLOT.size + length]
        ok = hashlib.sha256(struct.pack("<QQ", sequence, length) + body).digest() == digest
        (whole if ok else torn).append((sequence, body))
    if not whole:
        raise fail("the file is damaged (no copy of the state in it is whole: truncated or changed)")
    sequence, body = max(whole)
    return sequence, body, any(s > sequence for s, _ in torn)


def read_preamble(data: bytes, fail) -> int:
    """The slot capacity named by the file's first 64 bytes."""
    if not data:
        raise fail("the file is damaged (it is empty)")
    first, _, rest = data[:PREAMBLE].partition(b"\n")
    if not first.startswith(MAGIC):
        raise fail(f"the file is damaged or not an flcourse checkpoint (it does not start with "
                   f"{MAGIC.decode()!r})")
    if not first[len(MAGIC):].isdigit() or len(data) < PREAMBLE:
        raise fail("the file is damaged (its first lines are cut short)")
    version = int(first[len(MAGIC):])
    if version != FORMAT_VERSION:
        raise fail(f"it is in checkpoint format {version} and this flcourse reads format {FORMAT_VERSION}")
    words = rest.split(b"\n", 1)[0].split()
    if len(words) != 3 or words[:2] != [b"slots", b"2"] or not words[2].isdigit() or int(words[2]) < SLOT.size:
        raise fail("the file is damaged (its second line does not describe its slots)")
    return int(words[2])


def decode_state(body: bytes, fail) -> tuple[dict, dict]:
    """Header and arrays of a slot's body; ``fail(reason)`` makes the error to raise."""
    try:
        (length,) = struct.unpack_from("<Q", body)
        header = json.loads(body[8:8 + length])
        arrays, offset = {}, 8 + length
        for name, dtype, shape in header["arrays"]:
            array = np.frombuffer(body, dtype=np.dtype(dtype), count=math.prod(shape), offset=offset)
            arrays[name], offset = array.reshape(shape).copy(), offset + array.nbytes
    except (ValueError, TypeError, KeyError, struct.error) as error:
        raise fail(f"the file is damaged (its header cannot be read: {error})") from None
    return header, arrays
