"""Round histories as files: history.json in standard JSON, cheap to rewrite after every round.

A history is a dict of lists, one entry per round. :func:`save_history` writes it as standard
JSON (numpy values made plain, NaN and inf as null with a note); :class:`HistoryWriter` keeps a
file up to date with a growing history at the cost of copying bytes, not of encoding them
again. Every write replaces the file atomically. See notebook 05.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np


def plain(value):
    """JSON for numpy values: what ``json.dumps`` calls for a type it does not know."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"a history holds a {type(value).__name__}, which JSON cannot hold")


def replace_file(path: Path, data: bytes, fsync: bool = False) -> None:
    """Write ``data`` to a temporary file in the same folder, then rename it over ``path``:
    a crash leaves the old file or the new one, never half of one."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    try:
        with open(temporary, "wb") as file:
            file.write(data)
            if fsync:
                file.flush()
                os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class HistoryWriter:
    """Keeps ``path`` (history.json) up to date with a growing history, atomically.

    Each value is encoded once, when :meth:`update` first sees it; :meth:`write` then joins the
    encoded lists and replaces the file (temporary file + rename), so rewriting after every
    round copies the file's bytes (about 1 MB at 10,000 rounds) instead of encoding it again.
    The file is standard JSON: NaN and +-inf become null, and a top-level "note" names the keys
    that held them.
    """

    def __init__(self, path):
        self.path = Path(path)
        self._encoded, self._counts, self._non_finite = {}, {}, []

    def update(self, history: dict) -> "HistoryWriter":
        """Encode what was appended to the lists of ``history`` since the last update."""
        for key, values in history.items():
            key = str(key)
            buffer, done = self._encoded.setdefault(key, bytearray()), self._counts.get(key, 0)
            if len(values) < done:  # not the same history any more: encode this key again
                buffer.clear()
                done = 0
            if len(values) > done:
                body, finite = _encode_values(list(values[done:]))
                buffer += (b", " if buffer else b"") + body
                if not finite and key not in self._non_finite:
                    self._non_finite.append(key)
            self._counts[key] = len(values)
        return self

    def write(self) -> None:
        """Replace the file with the history as updated so far."""
        chunks = [b"{"]
        if self._non_finite:
            note = (f"NaN or infinite values of {', '.join(self._non_finite)} were "
                    f"written as null (standard JSON has no NaN or inf)")
            chunks.append(b'"note": %s,\n ' % json.dumps(note).encode())
        for index, (key, buffer) in enumerate(self._encoded.items()):
            chunks += [b",\n " if index else b"", json.dumps(key).encode(), b": [", buffer, b"]"]
        replace_file(self.path, b"".join(chunks + [b"}\n"]))

    def __repr__(self) -> str:
        return f"HistoryWriter({str(self.path)!r}, n_keys={len(self._encoded)})"


def _encode_values(values: list) -> tuple[bytes, bool]:
    """The JSON of ``values`` without its brackets, and whether every number was finite."""
    try:
        return json.dumps(values, allow_nan=False, default=plain)[1:-1].encode(), True
    except ValueError:
        return json.dumps(_nulls(values), allow_nan=False, default=plain)[1:-1].encode(), False


def _nulls(value):
    """``value`` with numpy values made plain and non-finite floats replaced by None."""
    if isinstance(value, (np.generic, np.ndarray)):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [_nulls(item) for item in value]
    if isinstance(value, dict):
        return {key: _nulls(item) for key, item in value.items()}
    return value


def save_history(history: dict, path) -> None:
    """Write a round history (a dict of lists) to ``path`` as standard JSON, atomically.

    numpy numbers and arrays become JSON numbers and lists; NaN and +-inf become null, noted
    in a top-level "note" entry that :func:`load_history` leaves out.
    """
    HistoryWriter(path).update(history).write()


def load_history(path) -> dict:
    """Read a round history written by :func:`save_history` (or :class:`HistoryWriter`)."""
    history = json.loads(Path(path).read_text())
    if isinstance(history.get("note"), str):
        del history["note"]
    return history


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
