"""Where data-parallel workers run: in this process, as OS processes, or on a Dask cluster.

A back end is a context manager with two methods:

    start(model, shards, aggregation)       set up one worker per shard
    reduce_gradients(params, batch)          -> (sum of the workers' gradient sums, seconds of
                                                the slowest worker's computation)

so :class:`~flcourse.distributed.DataParallelSGD` runs the same loop on each. See notebook 04.
"""
from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np

from .._validation import check_choice
from .data_parallel import Shard, ring_allreduce
from ..runtime.pool import STARTUP_TIMEOUT, ProcessPool, get_context, serve

SHM_PREFIX = "flcourse_"


class WorkerError(RuntimeError):
    """A worker raised, exited or stopped answering; the message names the worker."""


class InProcessBackend:
    """Workers are plain objects called one after another: the reference for the others."""

    name = "in-process"

    def start(self, model, shards, aggregation):
        self.model, self.shards, self.aggregation = model, shards, aggregation

    def reduce_gradients(self, params, batch):
        sums, seconds = [], []
        for shard in self.shards:
            started = time.perf_counter()
            sums.append(shard.gradient_sum(self.model, params, batch)[1])
            seconds.append(time.perf_counter() - started)
        if self.aggregation == "ring":
            return ring_allreduce(sums)[0][0], max(seconds)
        return np.sum(sums, axis=0), max(seconds)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class ProcessBackend:
    """One OS process per worker. Parameters, gradients and shards live in one shared-memory
    block; a socket per worker carries the step's batch indices and the worker's reply.

    Every step waits for all workers at most ``timeout`` seconds. A worker that raises, exits
    or hangs makes :meth:`reduce_gradients` raise :class:`WorkerError` naming it; leaving the
    ``with`` block, normally or not, stops every process and frees the shared memory.
    """

    name = "processes"

    def __init__(self, *, start_method: str | None = None, timeout: float = 60.0):
        self.start_method = start_method
        self.timeout = timeout
        self._pool = self._memory = self._barrier = None

    @property
    def processes(self) -> list:
        """The worker processes while the back end runs (empty once closed)."""
        return [] if self._pool is None else self._pool.processes

    def start(self, model, shards, aggregation):
        context = get_context(self.start_method, "ProcessBackend")
        layout = SharedLayout.for_shards(shards, model.n_params)
        self._memory = shared_memory.SharedMemory(create=True, size=layout.n_bytes,
                                                  name=SHM_PREFIX + secrets.token_hex(6))
        layout.write_shards(self._memory, shards)
        self._params, self._grads = layout.params(self._memory), layout.grads(self._memory)
        self._ring = aggregation == "ring"
        self._barrier = context.Barrier(len(shards)) if self._ring else None
        args = [(model, layout, self._memory.name, self._barrier, self.timeout)] * len(shards)
        self._pool = ProcessPool(worker_main, args, start_method=context.get_start_method(),  # small
                                 owner="ProcessBackend")  # arguments: the data is in shared memory
        self._replies(max(self.timeout, STARTUP_TIMEOUT))

    def reduce_gradients(self, params, batch):
        self._params[:] = params
        seconds = self._replies(self.timeout, {w: batch for w in range(len(self.processes))})
        total = self._grads[0].copy() if self._ring else self._grads.sum(axis=0)
        return total, max(seconds)

    def _replies(self, timeout, requests=None):
        """Send ``requests`` (none: wait for "ready") and return every worker's reply payload;
        WorkerError naming each worker that failed, all within ``timeout``."""
        if requests is None:
            outcomes = self._pool.collect(range(len(self.processes)), timeout)
        else:
            outcomes = self._pool.exchange(requests, timeout)
        failed = [w for w in sorted(outcomes) if outcomes[w][0] != "ok"]
        if failed:
            raise WorkerError("\n".join(self._pool.describe(w, outcomes[w], timeout) for w in failed)
                              + "\nAll workers were stopped.")
        return [outcomes[w][1] for w in sorted(outcomes)]

    def close(self):
        """Stop every worker process and free the shared memory; safe to call twice."""
        if self._pool is not None:
            self._pool.close()
        self._pool = self._barrier = None
        if self._memory is not None:
            self._params = self._grads = None
            self._memory.unlink()  # first: the segment must go even if a view outlives us
            try:
                self._memory.close()
            except BufferError:  # a view still exported (e.g. held by a traceback)
                pass
            self._memory = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def worker_main(worker, connection, model, layout, memory_name, barrier, timeout):
    """What each worker process runs: receive a batch, write its gradient sum, reply."""
    memory = _attach(memory_name)
    params, grads, shard = layout.params(memory), layout.grads(memory), layout.shard(memory, worker)
    shard.X.sum(), shard.y.sum()  # touch every page now, so the first step is not slower

    def step(batch):
        started = time.perf_counter()
        grads[worker] = shard.gradient_sum(model, params, batch)[1]
        seconds = time.perf_counter() - started
        if barrier is not None:
            ring_allreduce_in_place(grads, worker, barrier, timeout)
        return seconds

    try:
        serve(connection, step)
    finally:
        params = grads = shard = None  # drop the views into shared memory before closing it
        memory.close()


def ring_allreduce_in_place(rows, worker, barrier, timeout):
    """Worker ``worker``'s part of ring all-reduce over the shared array ``rows`` (K x d).

    Each peer only reads its left neighbour's row and writes its own; between steps all peers
    meet at ``barrier``. The same schedule as :func:`~flcourse.distributed.ring_allreduce`.
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


@dataclass(frozen=True)
class SharedLayout:
    """Where each array lives in the one shared-memory block of a :class:`ProcessBackend`:
    the parameters (d), the workers' gradient sums (K x d), then every shard's X, y and global
    indices, shard after shard."""

    n_params: int
    n_features: int
    shard_sizes: tuple
    y_dtype: str

    @classmethod
    def for_shards(cls, shards, n_params):
        return cls(n_params, shards[0].X.shape[1], tuple(len(s.y) for s in shards), shards[0].y.dtype.str)

    @property
    def n_bytes(self):
        return 8 * (self.n_params * (1 + len(self.shard_sizes)) + sum(self.shard_sizes) * (self.n_features + 2))

    def params(self, memory):
        return np.ndarray((self.n_params,), np.float64, memory.buf)

    def grads(self, memory):
        return np.ndarray((len(self.shard_sizes), self.n_params), np.float64, memory.buf, 8 * self.n_params)

    def _shard_arrays(self, memory, worker):
        n_total, before = sum(self.shard_sizes), sum(self.shard_sizes[:worker])
        offset = 8 * self.n_params * (1 + len(self.shard_sizes))
        size = self.shard_sizes[worker]
        X = np.ndarray((size, self.n_features), np.float64, memory.buf, offset + 8 * before * self.n_features)
        offset += 8 * n_total * self.n_features
        y = np.ndarray((size,), np.dtype(self.y_dtype), memory.buf, offset + 8 * before)
        indices = np.ndarray((size,), np.int64, memory.buf, offset + 8 * (n_total + before))
        return X, y, indices

    def write_shards(self, memory, shards):
        for worker, shard in enumerate(shards):
            for target, source in zip(self._shard_arrays(memory, worker), (shard.X, shard.y, shard.indices)):
                target[...] = source

    def shard(self, memory, worker):
        return Shard(*self._shard_arrays(memory, worker), sum(self.shard_sizes))


def _attach(name):
    try:  # Python >= 3.13: the creating process alone tracks (and frees) the segment
        return shared_memory.SharedMemory(name=name, track=False)
    except TypeError:
        return shared_memory.SharedMemory(name=name)


class DaskBackend:
    """Workers as tasks on a Dask cluster: shards are scattered once to the cluster's worker
    processes (round robin), and each step submits one task per shard.

    With ``scheduler_address=None`` a LocalCluster with one single-threaded worker process per
    shard (at most one per core) is started and closed with the back end.
    """

    name = "dask"

    def __init__(self, *, scheduler_address: str | None = None, n_workers: int = 2,
                 timeout: float = 60.0):
        self.scheduler_address = scheduler_address
        self.n_workers = n_workers
        self.timeout = timeout
        self._client = self._cluster = None

    def start(self, model, shards, aggregation):
        if aggregation != "server":
            raise ValueError(f"The 'aggregation' parameter of DataParallelSGD must be 'server' with "
                             f"backend='dask' (ring all-reduce runs in-process and with processes). "
                             f"Got {aggregation!r} instead.")
        self._client = self._connect()  # Dask's nanny gives each worker one BLAS thread
        dask_workers = sorted(self._client.scheduler_info()["workers"])
        self._placement = [[dask_workers[k % len(dask_workers)]] for k in range(len(shards))]
        self._model = self._client.scatter(model, broadcast=True)
        self._shards = [self._client.scatter(shard, workers=where)
                        for shard, where in zip(shards, self._placement)]

    def _connect(self):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise ImportError("backend='dask' needs dask.distributed: pip install 'flcourse[dask]'") from None
        if self.scheduler_address is None:
            import logging

            self._cluster = LocalCluster(
                n_workers=min(self.n_workers, os.cpu_count() or 1), threads_per_worker=1,
                processes=True, dashboard_address=":0", silence_logs=logging.ERROR)
            return Client(self._cluster)
        try:
            return Client(self.scheduler_address, timeout=f"{min(self.timeout, 10.0)}s")
        except (OSError, TimeoutError, ValueError) as error:
            raise ValueError(f"The 'scheduler_address' parameter of DataParallelSGD must be the "
                             f"address of a running Dask scheduler. Got {self.scheduler_address!r}, "
                             f"which could not be reached ({type(error).__name__}: {error}).") from None

    def reduce_gradients(self, params, batch):
        from dask.distributed import wait as dask_wait

        futures = [self._client.submit(_timed_gradient_sum, self._model, shard, params, batch,
                                       workers=where, pure=False)
                   for shard, where in zip(self._shards, self._placement)]
        try:
            dask_wait(futures, timeout=self.timeout)
        except TimeoutError:
            late = ", ".join(str(k) for k, future in enumerate(futures) if not future.done())
            raise WorkerError(f"worker {late} did not answer within timeout={self.timeout} s.") from None
        for worker, future in enumerate(futures):
            if future.status == "error":
                raise WorkerError(f"worker {worker} raised an exception: {future.exception()!r}")
        results = self._client.gather(futures)
        return np.sum([r[0] for r in results], axis=0), max(r[1] for r in results)

    def close(self):
        """Close the client and, if this back end started it, the LocalCluster."""
        for resource in (self._client, self._cluster):
            if resource is not None:
                resource.close()
        self._client = self._cluster = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _timed_gradient_sum(model, shard, params, batch):
    started = time.perf_counter()
    return shard.gradient_sum(model, params, batch)[1], time.perf_counter() - started


def make_backend(backend, *, start_method=None, timeout=60.0, scheduler_address=None, n_workers=2):
    """Return a back end object for a name ("in-process", "processes", "dask") or pass one through."""
    if not isinstance(backend, str):
        return backend
    check_choice(backend, "backend", "DataParallelSGD", {"in-process", "processes", "dask"})
    if backend == "in-process":
        return InProcessBackend()
    if backend == "processes":
        return ProcessBackend(start_method=start_method, timeout=timeout)
    return DaskBackend(scheduler_address=scheduler_address, n_workers=n_workers, timeout=timeout)
