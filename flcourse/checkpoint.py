"""Checkpoints that cost the same at round 10 and at round 10,000, and resume only the same run.

A checkpoint is two files. The history is a JSON-lines file beside the state
(``path + ".history.jsonl"``), one row per round in Python's JSON (NaN and Infinity allowed,
every float exact), appended and flushed after every round. The state (round, parameters,
random state, strategy state and the run's identity, :mod:`flcourse.identity`) is a small file
with two slots, written in turn, in place::

    FLCOURSE CHECKPOINT 1\\n            magic line with the format version
    slots 2 <capacity>\\n                 then padding to 64 bytes
    slot 0, slot 1 (capacity bytes each): b"SLOT", <8-byte sequence>, <8-byte length>,
        <sha256 of sequence, length and body>, body = <8-byte length><JSON header><raw arrays>

A save appends the round's row, then overwrites the older slot. A process killed halfway
through leaves that slot torn, and its checksum refuses it: the loader takes the newest whole
slot, whose rows are on disk, and later rows are dropped on resume. Writing in place costs
microseconds, where replacing a file (a rename) costs about a millisecond on a journaling file
system; the file is replaced atomically only when the state outgrows its slots. No pickle
anywhere. See notebook 05.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import struct
from pathlib import Path

import numpy as np

from .history import HistoryWriter, load_history, plain, replace_file, save_history
from .identity import constructor_params, identity_difference, qualified_name, run_identity

__all__ = ["CheckpointError", "CheckpointWriter", "HistoryWriter", "Resumed", "constructor_params",
           "history_path", "identity_difference", "load_checkpoint", "load_history",
           "qualified_name", "run_identity", "save_history"]

FORMAT_VERSION = 1
MAGIC = b"FLCOURSE CHECKPOINT "
PREAMBLE = 64  # bytes before slot 0
_SLOT = struct.Struct("<4sQQ32s")  # tag, sequence, body length, checksum
_TAG = b"SLOT"


class CheckpointError(ValueError):
    """A checkpoint cannot be resumed from; the message names the file and what is wrong."""


def history_path(path) -> Path:
    """The JSON-lines history file that belongs to the checkpoint at ``path``."""
    return Path(f"{path}.history.jsonl")


# ---- writing ------------------------------------------------------------------------------

class CheckpointWriter:
    """Saves a run after every round at a cost that does not grow with the run.

    Parameters
    ----------
    path : str or Path
        The state file; the history goes to :func:`history_path` of it.
    identity : dict
        :func:`run_identity` of the run.
    fsync : bool, default=False
        Also fsync both files at every save. A killed process loses nothing without it; a
        power cut may, but fsync costs milliseconds a round.
    """

    def __init__(self, path, identity: dict, *, fsync: bool = False):
        self.path, self.identity, self.fsync = Path(path), identity, fsync
        self._history = self._state = None
        self._sequence, self._capacity, self._digest = 0, 0, hashlib.sha256()

    def start(self, history_rows: list[dict]) -> None:
        """Begin a new run: forget any earlier checkpoint there; write the rows so far."""
        self.close()
        self.path.unlink(missing_ok=True)
        self._sequence, self._digest = 0, hashlib.sha256()
        self._history = open(history_path(self.path), "wb")
        self._append(history_rows)

    def resume(self, server_round: int) -> None:
        """Go on from a loaded checkpoint: keep rows 0..server_round, drop any after them."""
        self.close()
        data = self.path.read_bytes()
        self._sequence, self._capacity = _newest_slot(data, CheckpointError)[0], _read_preamble(data, CheckpointError)
        self._state = open(self.path, "r+b", buffering=0)
        with open(history_path(self.path), "r+b") as history:
            data = history.read()
            parts = data.split(b"\n", server_round + 1)
            kept = len(data) - len(parts[-1]) if len(parts) > server_round + 1 else len(data)
            history.truncate(kept)
        self._digest = hashlib.sha256(data[:kept])
        self._history = open(history_path(self.path), "ab")

    def save(self, server_round: int, params: np.ndarray, rng_state: dict, new_rows: list[dict],
             extra_state: dict | None = None) -> None:
        """Append ``new_rows`` to the history (flushed), then write the state in the older slot.

        ``extra_state`` (a strategy's state) holds JSON values and, at its top level, ndarrays,
        which are stored as raw bytes. What is written is not checked here:
        :func:`load_checkpoint` is the gate.
        """
        if self._history is None:
            self.resume(server_round - 1)
        self._append(new_rows)
        header = {"identity": self.identity, "round": server_round, "rng_state": rng_state,
                  "history_sha256": self._digest.hexdigest(), "extra_state": {}}
        arrays = {"params": np.asarray(params, dtype=np.float64)}
        for key, value in (extra_state or {}).items():
            if isinstance(value, np.ndarray):
                arrays[f"extra_state.{key}"] = value
            else:
                header["extra_state"][key] = value
        self._sequence += 1
        self._write_slot(_slot_bytes(self._sequence, encode_state(header, arrays)))

    def _write_slot(self, slot: bytes) -> None:
        if self._state is None or len(slot) > self._capacity:
            self._create(slot)
            return
        self._state.seek(PREAMBLE + (self._sequence % 2) * self._capacity)
        self._state.write(slot)
        if self.fsync:
            os.fsync(self._state.fileno())

    def _create(self, slot: bytes) -> None:
        """A new state file whose slots hold twice this state, the state in its slot."""
        if self._state is not None:
            self._state.close()
        self._capacity = max(4096, -(-2 * len(slot) // 4096) * 4096)
        slots = [bytes(self._capacity), bytes(self._capacity)]
        slots[self._sequence % 2] = slot.ljust(self._capacity, b"\0")
        replace_file(self.path, _preamble(self._capacity) + b"".join(slots), self.fsync)
        self._state = open(self.path, "r+b", buffering=0)

    def _append(self, rows) -> None:
        data = "".join(json.dumps(row, default=plain) + "\n" for row in rows).encode()
        self._digest.update(data)
        self._history.write(data)
        self._history.flush()
        if self.fsync:
            os.fsync(self._history.fileno())

    def close(self) -> None:
        """Close both files (saving again needs start() or resume())."""
        for file in (self._history, self._state):
            if file is not None:
                file.close()
        self._history = self._state = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self) -> str:
        return f"CheckpointWriter({str(self.path)!r})"


def _preamble(capacity: int) -> bytes:
    return (b"%s%d\nslots 2 %d\n" % (MAGIC, FORMAT_VERSION, capacity)).ljust(PREAMBLE - 1) + b"\n"


def _slot_bytes(sequence: int, body: bytes) -> bytes:
    digest = hashlib.sha256(struct.pack("<QQ", sequence, len(body)) + body).digest()
    return _SLOT.pack(_TAG, sequence, len(body), digest) + body


def encode_state(header: dict, arrays: dict) -> bytes:
    """The body of a state slot: an 8-byte length, the JSON header, the raw arrays."""
    arrays = {name: np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")) for name, a in arrays.items()}
    if any(a.dtype.hasobject for a in arrays.values()):
        raise TypeError("A checkpoint stores numeric arrays only (no pickled objects).")
    layout = [[name, a.dtype.str, list(a.shape)] for name, a in arrays.items()]
    text = json.dumps(dict(header, format_version=FORMAT_VERSION, arrays=layout), default=plain).encode()
    return b"".join([struct.pack("<Q", len(text)), text, *(a.tobytes() for a in arrays.values())])


# ---- reading ------------------------------------------------------------------------------

@dataclasses.dataclass
class Resumed:
    """What :func:`load_checkpoint` gives back: enough to continue the run exactly.

    ``fell_back`` is True when the newest slot was torn (a crash while saving) and the state
    is the one saved a round earlier.
    """

    server_round: int
    params: np.ndarray
    rng_state: dict
    history: dict
    extra_state: dict
    fell_back: bool = False


def load_checkpoint(path, identity: dict) -> Resumed:
    """Read the checkpoint at ``path`` and check that it continues the run ``identity``.

    Raises
    ------
    CheckpointError
        The file is missing or damaged, of another format version, of another run (the message
        says which part differs, with both values), holds non-finite or wrongly sized params,
        a bad round, or a history that is missing, not JSON or not rows 0..round.
    """
    def fail(reason):
        return CheckpointError(f"Cannot resume from {path}: {reason}.")

    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise fail("the file does not exist (nothing was saved there yet)") from None
    except OSError as error:
        raise fail(f"the file cannot be read ({error.strerror})") from None
    _, body, fell_back = _newest_slot(data, fail)
    header, arrays = decode_state(body, fail)
    difference = identity_difference(header.get("identity") or {}, identity)
    if difference:
        raise fail(difference)
    server_round, params = _check_round_and_params(header.get("round"), arrays.get("params"),
                                                   identity["n_params"], fail)
    _check_rng_state(header.get("rng_state"), fail)
    extra = dict(header.get("extra_state") or {})
    extra.update({name.split(".", 1)[1]: a for name, a in arrays.items() if name.startswith("extra_state.")})
    history = read_history_rows(history_path(path), server_round, fail, header.get("history_sha256"))
    return Resumed(server_round, params, header["rng_state"], history, extra, fell_back)


def _newest_slot(data: bytes, fail) -> tuple[int, bytes, bool]:
    """(sequence, body, whether a newer slot was torn) of the newest whole slot in ``data``."""
    capacity = _read_preamble(data, fail)
    whole, torn = [], []
    for index in range(2):
        slot = data[PREAMBLE + index * capacity:PREAMBLE + (index + 1) * capacity]
        if len(slot) < _SLOT.size or slot[:4] != _TAG:
            continue
        _, sequence, length, digest = _SLOT.unpack_from(slot)
        body = slot[_SLOT.size:_SLOT.size + length]
        ok = hashlib.sha256(struct.pack("<QQ", sequence, length) + body).digest() == digest
        (whole if ok else torn).append((sequence, body))
    if not whole:
        raise fail("the file is damaged (no copy of the state in it is whole: truncated or changed)")
    sequence, body = max(whole)
    return sequence, body, any(s > sequence for s, _ in torn)


def _read_preamble(data: bytes, fail) -> int:
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
    if len(words) != 3 or words[:2] != [b"slots", b"2"] or not words[2].isdigit() or int(words[2]) < _SLOT.size:
        raise fail("the file is damaged (its second line does not describe its slots)")
    return int(words[2])


def _check_round_and_params(server_round, params, n_params: int, fail):
    if isinstance(server_round, bool) or not isinstance(server_round, int) or server_round < 0:
        raise fail(f"its round must be an int >= 0, but it is {server_round!r}")
    if params is None or params.shape != (n_params,):
        raise fail(f"its params have shape {None if params is None else params.shape}, "
                   f"the model needs ({n_params},)")
    if not np.isfinite(params).all():
        raise fail(f"its params hold {int((~np.isfinite(params)).sum())} non-finite numbers (NaN or inf)")
    return server_round, params.astype(np.float64)


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


def _check_rng_state(state, fail) -> None:
    kind = getattr(np.random, str(state.get("bit_generator")), None) if isinstance(state, dict) else None
    try:
        if not (isinstance(kind, type) and issubclass(kind, np.random.BitGenerator)):
            raise TypeError("not a numpy bit generator")
        kind().state = state
    except (TypeError, KeyError, ValueError):
        raise fail("its rng_state is not the state of a numpy bit generator") from None


def read_history_rows(path: Path, server_round: int, fail, sha256: str | None = None) -> dict:
    """The history, a dict of lists, from rows 0..server_round of the JSON-lines file ``path``.

    Rows after ``server_round`` (appended just before a crash) are ignored; with ``sha256``
    (saved with the state), rows 0..server_round must have exactly that checksum.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise fail(f"its history file {path} is missing") from None
    except OSError as error:
        raise fail(f"its history file {path} cannot be read ({error.strerror})") from None
    n_rows = data.count(b"\n")
    if n_rows <= server_round:
        raise fail(f"its history file {path} holds {n_rows} rows, fewer than the "
                   f"{server_round + 1} of rounds 0..{server_round}")
    lines = data.split(b"\n", server_round + 1)[:server_round + 1]
    history = {}
    for expected, line in enumerate(lines):
        try:
            row = json.loads(line)
        except ValueError:
            raise fail(f"its history file {path} is damaged (line {expected + 1} is not JSON)") from None
        if not isinstance(row, dict) or row.get("round") != expected:
            got = row.get("round") if isinstance(row, dict) else row
            raise fail(f"its history file {path} is not rounds 0..{server_round} in order "
                       f"(line {expected + 1} is round {got!r}, expected {expected})")
        for key, value in row.items():
            history.setdefault(key, []).append(value)
    if sha256 is not None and hashlib.sha256(b"\n".join(lines) + b"\n").hexdigest() != sha256:
        raise fail(f"its history file {path} is damaged (rows 0..{server_round} do not match the "
                   f"checksum saved with the state)")
    return history
