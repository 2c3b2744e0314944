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
import os
from pathlib import Path

import numpy as np

from .checkpoint_format import (FORMAT_VERSION, PREAMBLE, decode_state, encode_state, newest_slot, preamble,
                                read_preamble, slot_bytes)
from .history import HistoryWriter, load_history, plain, read_history_rows, replace_file, save_history
from .identity import constructor_params, identity_difference, qualified_name, run_identity

__all__ = ["FORMAT_VERSION", "PREAMBLE", "CheckpointError", "CheckpointWriter", "HistoryWriter", "NoCheckpoint",
           "Resumed", "constructor_params", "flatten_state", "unflatten_state",
           "history_path", "identity_difference", "load_checkpoint", "load_history",
           "qualified_name", "run_identity", "save_history"]



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
        self._sequence, self._capacity = newest_slot(data, CheckpointError)[0], read_preamble(data, CheckpointError)
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
        self._write_slot(slot_bytes(self._sequence, encode_state(header, arrays)))

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
        replace_file(self.path, preamble(self._capacity) + b"".join(slots), self.fsync)
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
    _, body, fell_back = newest_slot(data, fail)
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


def _check_round_and_params(server_round, params, n_params: int, fail):
    if isinstance(server_round, bool) or not isinstance(server_round, int) or server_round < 0:
        raise fail(f"its round must be an int >= 0, but it is {server_round!r}")
    if params is None or params.shape != (n_params,):
        raise fail(f"its params have shape {None if params is None else params.shape}, "
                   f"the model needs ({n_params},)")
    if not np.isfinite(params).all():
        raise fail(f"its params hold {int((~np.isfinite(params)).sum())} non-finite numbers (NaN or inf)")
    return server_round, params.astype(np.float64)


def _check_rng_state(state, fail) -> None:
    kind = getattr(np.random, str(state.get("bit_generator")), None) if isinstance(state, dict) else None
    try:
        if not (isinstance(kind, type) and issubclass(kind, np.random.BitGenerator)):
            raise TypeError("not a numpy bit generator")
        kind().state = state
    except (TypeError, KeyError, ValueError):
        raise fail("its rng_state is not the state of a numpy bit generator") from None


# ---- nested state ---------------------------------------------------------------------------

def flatten_state(state: dict, prefix: str = "") -> dict:
    """``{"strategy": {"c": array}, "clients": {"7": {...}}}`` as ``{"strategy/c": array, ...}``:
    the flat form :meth:`CheckpointWriter.save` stores (arrays raw, the rest as JSON)."""
    flat = {}
    for key, value in state.items():
        if "/" in str(key):
            raise ValueError(f"A state key may not hold '/'. Got {key!r} instead.")
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten_state(value, path + "/"))
        else:
            flat[path] = value
    return flat


def unflatten_state(flat: dict) -> dict:
    """The nested state of :func:`flatten_state`'s output."""
    state: dict = {}
    for path, value in flat.items():
        *parents, leaf = path.split("/")
        node = state
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return state


class NoCheckpoint:
    """What the round loop saves to when there is no ``checkpoint_path``: nothing."""

    identity = None

    def start(self, rows):
        pass

    def resume(self, server_round):
        pass

    def save(self, *args):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

