"""Shared memory: one segment per pool of processes, laid out as named arrays, freed by its creator.

The parent creates a :class:`SharedBlock` (its name starts with :data:`SHM_PREFIX`, so that a
test can list what is left behind), writes arrays into it and passes the block's name and
:class:`SharedLayout` to its children, which :func:`attach` to it and take views: no array is
pickled or copied per step. Only the creator frees the segment, when it closes. See notebook 04.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np

SHM_PREFIX = "flcourse_"
_ALIGN = 8  # bytes: every array starts at a multiple of 8


@dataclass(frozen=True)
class SharedLayout:
    """Where each named array lives in one shared-memory block: back to back, in order.

    Attributes
    ----------
    fields : tuple of (name, dtype string, shape)
        Built by :meth:`of`; small and picklable, so children receive it as an argument.
    """

    fields: tuple

    @classmethod
    def of(cls, **arrays) -> SharedLayout:
        """A layout for ``name=(dtype, shape)`` pairs, e.g. ``of(params=(np.float64, (650,)))``."""
        return cls(tuple((name, np.dtype(dtype).str, tuple(int(n) for n in shape))
                         for name, (dtype, shape) in arrays.items()))

    def _offsets(self) -> dict:
        """{name: (offset in bytes, dtype, shape)}, and the total size under the key None."""
        offsets, offset = {}, 0
        for name, dtype, shape in self.fields:
            offsets[name] = (offset, np.dtype(dtype), shape)
            size = np.dtype(dtype).itemsize * int(np.prod(shape))
            offset += -(-size // _ALIGN) * _ALIGN
        offsets[None] = offset
        return offsets

    @property
    def n_bytes(self) -> int:
        """The size of the block, at least 1 byte."""
        return max(self._offsets()[None], 1)

    def view(self, memory: shared_memory.SharedMemory, name: str) -> np.ndarray:
        """The array ``name`` inside ``memory``: a view, no copy."""
        offset, dtype, shape = self._offsets()[name]
        return np.ndarray(shape, dtype, memory.buf, offset)

    def __repr__(self) -> str:
        return f"SharedLayout({len(self.fields)} arrays, n_bytes={self.n_bytes})"


class SharedBlock:
    """A shared-memory segment created for ``layout``; :meth:`close` frees it.

    Parameters
    ----------
    layout : SharedLayout
    """

    def __init__(self, layout: SharedLayout):
        self.layout = layout
        self.memory = shared_memory.SharedMemory(create=True, size=layout.n_bytes,
                                                 name=SHM_PREFIX + secrets.token_hex(6))
        self.name = self.memory.name

    def view(self, name: str) -> np.ndarray:
        """The array ``name`` of the layout, as a view into the segment."""
        return self.layout.view(self.memory, name)

    def write(self, **arrays) -> None:
        """Copy each ``name=array`` into its place in the segment."""
        for name, array in arrays.items():
            self.view(name)[...] = array

    def close(self) -> None:
        """Free the segment; safe to call twice. Drop your views first, or they keep the
        mapping (never the segment: it is unlinked before anything else)."""
        if self.memory is None:
            return
        memory, self.memory = self.memory, None
        memory.unlink()  # first: the segment must go even if a view outlives us
        try:
            memory.close()
        except BufferError:  # a view still exported (e.g. held by a traceback)
            pass

    def __repr__(self) -> str:
        return f"SharedBlock(name={self.name!r}, n_bytes={self.layout.n_bytes}, open={self.memory is not None})"


def attach(name: str) -> shared_memory.SharedMemory:
    """Open the existing segment ``name`` in a child, without taking it over: on Python >= 3.13
    the creating process alone tracks (and frees) it."""
    try:
        return shared_memory.SharedMemory(name=name, track=False)
    except TypeError:
        return shared_memory.SharedMemory(name=name)
