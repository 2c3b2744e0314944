"""Collectives: ring all-reduce (as K peers would run it, and in place over shared memory) and
the bytes each node sends per step.

Pure arithmetic on arrays: no process, no back end. The in-place ring is what each worker
process of the process back end runs, and it follows the same schedule as
:func:`ring_allreduce`. See notebook 04.
"""
from __future__ import annotations

import numpy as np

BYTES_PER_FLOAT = 8


def ring_allreduce(arrays) -> tuple[list[np.ndarray], np.ndarray]:
    """Sum K equal-length vectors with ring all-reduce, as K peers with no server would.

    The vector is cut into K chunks. Reduce-scatter: in K - 1 steps, peer k passes one chunk to
    peer k + 1, which adds it to its own; afterwards peer k holds the full sum of chunk k + 1.
    All-gather: in K - 1 more steps the finished chunks travel round the ring. Each peer sends
    2 (K - 1) / K of the vector, whatever K is, against K vectors into a central server.

    Parameters
    ----------
    arrays : sequence of K array-likes of shape (d,)

    Returns
    -------
    results : list of K ndarrays, each the sum of ``arrays``
    bytes_sent : ndarray of shape (K,), the bytes each peer sent
    """
    buffers = [np.array(array, dtype=np.float64) for array in arrays]
    n_peers = len(buffers)
    chunks = np.array_split(np.arange(buffers[0].size), n_peers)
    sent = np.zeros(n_peers, dtype=np.int64)
    for phase in ("reduce-scatter", "all-gather"):
        for step in range(n_peers - 1):
            outgoing = [(k, (k - step + (phase == "all-gather")) % n_peers) for k in range(n_peers)]
            messages = [(k, chunk, buffers[k][chunks[chunk]].copy()) for k, chunk in outgoing]
            for k, chunk, data in messages:
                target = buffers[(k + 1) % n_peers]
                target[chunks[chunk]] = target[chunks[chunk]] + data if phase == "reduce-scatter" else data
                sent[k] += data.nbytes
    return buffers, sent


def ring_allreduce_in_place(rows: np.ndarray, worker: int, barrier, timeout: float) -> None:
    """Worker ``worker``'s part of ring all-reduce over the shared array ``rows`` (K x d).

    Each peer only reads its left neighbour's row and writes its own; between steps all peers
    meet at ``barrier`` (a ``Barrier`` of K parties, waited on with ``timeout``). The same
    schedule as :func:`ring_allreduce`: afterwards every row holds the sum.
    """
    n_peers = rows.shape[0]
    chunks = np.array_split(np.arange(rows.shape[1]), n_peers)
    left = rows[(worker - 1) % n_peers]
    barrier.wait(timeout)
    for step in range(n_peers - 1):  # reduce-scatter
        chunk = chunks[(worker - 1 - step) % n_peers]
        rows[worker, chunk] += left[chunk]
        barrier.wait(timeout)
    for step in range(n_peers - 1):  # all-gather
        chunk = chunks[(worker - step) % n_peers]
        rows[worker, chunk] = left[chunk]
        barrier.wait(timeout)


def traffic_per_step(n_params: int, n_workers: int, aggregation: str) -> dict:
    """Bytes each node sends in one synchronous step.

    With a parameter server, every worker sends its gradient (d floats) and the server sends
    the parameters to every worker (K d floats). With ring all-reduce, every worker sends
    2 (K - 1) / K d floats and there is no server.

    Returns
    -------
    traffic : dict
        ``server`` (int), ``workers`` (int ndarray of shape (n_workers,)) and ``total`` (int).
    """
    vector = n_params * BYTES_PER_FLOAT
    if aggregation == "server":
        workers = np.full(n_workers, vector)
        server = n_workers * vector
    else:
        _, workers = ring_allreduce(np.zeros((n_workers, n_params)))
        server = 0
    return {"server": int(server), "workers": workers.astype(int), "total": int(server + workers.sum())}
