"""Where data-parallel workers run: in this process, as OS processes, or on a Dask cluster.

A back end is a context manager with two methods:

    start(model, shards, aggregation)       set up one worker per shard
    reduce_gradients(params, batch)          -> (sum of the workers' gradient sums, seconds of
                                                the slowest worker's computation)

so :class:`~flcourse.distributed.DataParallelSGD` runs the same loop on each. The processes,
their deadlines, shared memory and the Dask cluster come from :mod:`flcourse.runtime`; this
module adds what a worker does. See notebook 04.
"""
from __future__ import annotations

import time

import numpy as np

from .._validation import check_choice
from ..runtime import (STARTUP_TIMEOUT, ProcessPool, SharedBlock, SharedLayout, attach,
                       connect_dask, get_context, serve)
from .collectives import ring_allreduce, ring_allreduce_in_place
from .shards import Shard

BACKEND_NAMES = {"in-process", "processes", "dask"}


class WorkerError(RuntimeError):
    """A worker raised, exited or stopped answering; the message names the worker."""


class InProcessBackend:
    """Workers are plain objects called one after another: the reference for the others."""

    name = "in-process"

    def start(self, model, shards: list[Shard], aggregation: str) -> None:
        self.model, self.shards, self.aggregation = model, shards, aggregation

    def reduce_gradients(self, params: np.ndarray, batch: np.ndarray) -> tuple[np.ndarray, float]:
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

    def __repr__(self) -> str:
        return "InProcessBackend()"


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
        self._pool = self._block = self._barrier = None

    @property
    def processes(self) -> list:
        """The worker processes while the back end runs (empty once closed)."""
        return [] if self._pool is None else self._pool.processes

    @property
    def memory_name(self) -> str | None:
        """The name of the shared-memory segment while the back end runs (None once closed)."""
        return None if self._block is None else self._block.name

    def start(self, model, shards: list[Shard], aggregation: str) -> None:
        context = get_context(self.start_method, "ProcessBackend")
        self._block = SharedBlock(shard_layout(shards, model.n_params))
        for k, shard in enumerate(shards):
            self._block.write(**{f"X{k}": shard.X, f"y{k}": shard.y, f"indices{k}": shard.indices})
        self._params, self._grads = self._block.view("params"), self._block.view("grads")
        self._ring = aggregation == "ring"
        self._barrier = context.Barrier(len(shards)) if self._ring else None
        args = [(model, self._block.layout, self._block.name, shards[0].n_samples, self._barrier,
                 self.timeout)] * len(shards)  # small arguments: the data is in shared memory
        self._pool = ProcessPool(worker_main, args, start_method=context.get_start_method(),
                                 owner="ProcessBackend")
        self._replies(max(self.timeout, STARTUP_TIMEOUT))

    def reduce_gradients(self, params: np.ndarray, batch: np.ndarray) -> tuple[np.ndarray, float]:
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

    def close(self) -> None:
        """Stop every worker process and free the shared memory; safe to call twice."""
        if self._pool is not None:
            self._pool.close()
        self._pool = self._barrier = None
        if self._block is not None:
            self._params = self._grads = None  # drop our views before the segment goes
            self._block.close()
            self._block = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self) -> str:
        return f"ProcessBackend(start_method={self.start_method!r}, timeout={self.timeout!r})"


def shard_layout(shards: list[Shard], n_params: int) -> SharedLayout:
    """The shared-memory layout of a :class:`ProcessBackend`: the parameters (d), the workers'
    gradient sums (K x d), then each shard's X, y and global indices (``X0``, ``y0``,
    ``indices0``, ``X1``, ...)."""
    arrays = {"params": (np.float64, (n_params,)), "grads": (np.float64, (len(shards), n_params))}
    for k, shard in enumerate(shards):
        arrays.update({f"X{k}": (np.float64, shard.X.shape), f"y{k}": (shard.y.dtype, shard.y.shape),
                       f"indices{k}": (np.int64, shard.indices.shape)})
    return SharedLayout.of(**arrays)


def worker_main(worker, connection, model, layout, memory_name, n_samples, barrier, timeout):
    """What each worker process runs: receive a batch, write its gradient sum, reply."""
    memory = attach(memory_name)
    params, grads = layout.view(memory, "params"), layout.view(memory, "grads")
    shard = Shard(*(layout.view(memory, f"{name}{worker}") for name in ("X", "y", "indices")), n_samples)
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
        self._dask = None

    def start(self, model, shards: list[Shard], aggregation: str) -> None:
        if aggregation != "server":
            raise ValueError(f"The 'aggregation' parameter of DataParallelSGD must be 'server' with "
                             f"backend='dask' (ring all-reduce runs in-process and with processes). "
                             f"Got {aggregation!r} instead.")
        self._dask = connect_dask(self.scheduler_address, n_workers=self.n_workers,
                                  timeout=self.timeout, owner="DataParallelSGD")
        client = self._dask.client
        dask_workers = sorted(client.scheduler_info()["workers"])
        self._placement = [[dask_workers[k % len(dask_workers)]] for k in range(len(shards))]
        self._model = client.scatter(model, broadcast=True)
        self._shards = [client.scatter(shard, workers=where) for shard, where in zip(shards, self._placement)]

    def reduce_gradients(self, params: np.ndarray, batch: np.ndarray) -> tuple[np.ndarray, float]:
        from dask.distributed import wait as dask_wait

        client = self._dask.client
        futures = [client.submit(_timed_gradient_sum, self._model, shard, params, batch,
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
        results = client.gather(futures)
        return np.sum([r[0] for r in results], axis=0), max(r[1] for r in results)

    def close(self) -> None:
        """Close the client and, if this back end started it, the LocalCluster."""
        if self._dask is not None:
            self._dask.close()
        self._dask = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self) -> str:
        return (f"DaskBackend(scheduler_address={self.scheduler_address!r}, "
                f"n_workers={self.n_workers!r}, timeout={self.timeout!r})")


def _timed_gradient_sum(model, shard: Shard, params: np.ndarray, batch: np.ndarray) -> tuple[np.ndarray, float]:
    """A Dask task: ``shard``'s gradient sum over ``batch``, and the seconds it took."""
    started = time.perf_counter()
    return shard.gradient_sum(model, params, batch)[1], time.perf_counter() - started


def make_backend(backend, *, start_method=None, timeout=60.0, scheduler_address=None, n_workers=2):
    """Return a back end object for a name ("in-process", "processes", "dask") or pass one through."""
    if not isinstance(backend, str):
        return backend
    check_choice(backend, "backend", "DataParallelSGD", BACKEND_NAMES)
    if backend == "in-process":
        return InProcessBackend()
    if backend == "processes":
        return ProcessBackend(start_method=start_method, timeout=timeout)
    return DaskBackend(scheduler_address=scheduler_address, n_workers=n_workers, timeout=timeout)


def check_backend(backend, owner: str = "DataParallelSGD"):
    """Return ``backend`` if it is a back-end name or a back-end object, else raise.

    A back-end object is a context manager with ``start(model, shards, aggregation)`` and
    ``reduce_gradients(params, batch)`` methods (see this module's docstring).
    """
    if isinstance(backend, str):
        return check_choice(backend, "backend", owner, BACKEND_NAMES)
    needed = ("start", "reduce_gradients", "__enter__", "__exit__")
    missing = [name for name in needed if not callable(getattr(backend, name, None))]
    if missing:
        raise TypeError(f"The 'backend' parameter of {owner} must be one of {sorted(BACKEND_NAMES)} "
                        f"or a back-end object (a context manager with start and reduce_gradients "
                        f"methods). Got {backend!r} of type {type(backend).__name__}, which has no "
                        f"{', '.join(missing)}, instead.")
    return backend
