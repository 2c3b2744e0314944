"""Shards: what one data-parallel worker holds, how a training set is cut, how a cut is checked.

A :class:`Shard` answers one question per step: the sum of the per-sample gradients over the
rows of the global minibatch that it holds. See notebook 04.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data import check_index_partition
from ..models import Model


@dataclass
class Shard:
    """What one worker holds: its rows of the training set and their global indices.

    Attributes
    ----------
    X : ndarray of shape (n_shard, n_features)
    y : ndarray of shape (n_shard,)
    indices : ndarray of shape (n_shard,), the rows' positions in the full training set
    n_samples : int, the size of the full training set
    """

    X: np.ndarray
    y: np.ndarray
    indices: np.ndarray
    n_samples: int

    def __post_init__(self):
        self._local_row = np.full(self.n_samples, -1, dtype=np.int64)
        self._local_row[self.indices] = np.arange(len(self.indices))

    def gradient_sum(self, model: Model, params: np.ndarray, batch: np.ndarray) -> tuple[int, np.ndarray]:
        """Return (m, sum of the per-sample gradients over the m rows of ``batch`` held here).

        Unchecked: ``batch`` holds global row indices (of the full training set), and the
        gradient comes from the model's kernel ``grad_unchecked``.
        """
        rows = self._local_row[batch]
        rows = rows[rows >= 0]
        if len(rows) == 0:
            return 0, np.zeros(model.n_params)
        return len(rows), len(rows) * model.grad_unchecked(params, self.X[rows], self.y[rows])

    def __repr__(self) -> str:
        return f"Shard(n_shard={len(self.indices)}, n_features={self.X.shape[1]}, n_samples={self.n_samples})"


def make_shards(X: np.ndarray, y: np.ndarray, partition) -> list[Shard]:
    """Cut (X, y) into one :class:`Shard` per part of ``partition`` (integer index arrays)."""
    return [Shard(X[part], y[part], np.asarray(part), len(y)) for part in partition]


def check_worker_partition(partition, n_workers: int, n_samples: int) -> list[np.ndarray]:
    """Return ``partition`` as int64 index arrays if it gives each of ``n_workers`` workers a
    non-empty shard and each of the ``n_samples`` rows to exactly one worker, else raise."""
    owner = "DataParallelSGD.fit"
    parts = check_index_partition(partition, n_samples, owner, cover=False)
    if len(parts) != n_workers:
        raise ValueError(f"The 'partition' parameter of {owner} must hold one index array per "
                         f"worker ({n_workers}). Got {len(parts)} arrays instead.")
    for worker, part in enumerate(parts):
        if len(part) == 0:
            raise ValueError(f"The 'partition' parameter of {owner} must give every worker at "
                             f"least one sample. Got 0 samples for worker {worker} instead.")
    return check_index_partition(parts, n_samples, owner)
