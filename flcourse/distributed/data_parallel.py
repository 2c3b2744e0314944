"""Synchronous data-parallel SGD: workers that own shards, a parameter server, ring all-reduce.

Every step draws one global minibatch B (the same stream of batches as serial :func:`sgd` with
the same seed). Worker k computes the *sum* of the per-sample gradients over B ∩ S_k, the part
of the batch in its shard S_k; the sums are added (by a server, or peer to peer by ring
all-reduce) and divided by |B|, which gives exactly the serial minibatch gradient. The update
is then the serial one, so data-parallel SGD retraces serial SGD. See notebook 04.
"""
from __future__ import annotations

import sys
import time
from itertools import islice

import numpy as np

from .._validation import (check_choice, check_optional_callable, check_optional_str, check_rng,
                           check_scalar, derived_rng)
from ..models import Model, check_model
from ..optim import check_eval_set, check_finite, minibatches, record
from .backends import check_backend, make_backend
from .collectives import traffic_per_step
from .shards import check_worker_partition, make_shards

MAX_TIMEOUT = 86_400.0  # seconds: a day; longer (or inf) would overflow the OS's wait calls


class DataParallelSGD:
    """Synchronous data-parallel minibatch SGD over ``n_workers`` workers.

    Parameters
    ----------
    model : Model
    n_workers : int, default=2
        Number of workers K; each holds one shard of the training set.
    lr : float, default=0.1
    batch_size : int, default=64
        Size of the *global* minibatch, split among workers by shard membership; >= n_workers.
    backend : {"in-process", "processes", "dask"} or a backend object, default="in-process"
        Where the workers run: in this process (for teaching and debugging), as OS processes
        sharing the parameters through shared memory, or on a Dask cluster.
    aggregation : {"server", "ring"}, default="server"
        A parameter server adds the workers' gradient sums, or the workers add them among
        themselves by ring all-reduce ("ring" runs in-process and with processes).
    start_method : {"fork", "spawn", "forkserver"} or None
        For ``backend="processes"``; None: the platform's default, but never ``fork`` from a
        multi-threaded process (see :func:`~flcourse.runtime.default_start_method`).
    scheduler_address : str or None
        For ``backend="dask"``: a running scheduler ("tcp://host:8786"); None starts a
        LocalCluster on this machine.
    timeout : float in (0, 86400], default=60.0
        Seconds a step may take before a silent worker is declared hung (at most a day,
        ``MAX_TIMEOUT``: the operating system's wait calls overflow beyond that).
    seed : int, Generator or None
        Drives the order of the minibatches, exactly as in :func:`sgd`, and, when :meth:`fit`
        gets no ``params``, the model's initial parameters (from a derived stream, see
        :func:`~flcourse._validation.derived_rng`, so the minibatch order stays serial SGD's).

    Attributes
    ----------
    params_ : ndarray of shape (n_params,)
    history_ : dict of lists
        ``step``, ``train_loss``, ``train_<score>`` (and ``test_*`` with ``eval_set``),
        ``bytes_sent`` (all nodes, cumulative), ``compute_seconds`` (slowest worker, cumulative)
        and ``wall_seconds`` (cumulative) at each evaluation.
    traffic_ : dict
        Bytes sent per step by the server and by each worker.
    step_seconds_ : dict of lists
        ``compute`` (slowest worker) and ``wall`` seconds of every step, for steady-state timing.
    backend_ : back end object
        The back end of the last :meth:`fit` (closed once it returns).
    """

    def __init__(self, model: Model, *, n_workers: int = 2, lr: float = 0.1, batch_size: int = 64,
                 backend="in-process", aggregation: str = "server", start_method: str | None = None,
                 scheduler_address: str | None = None, timeout: float = 60.0, seed=None):
        self.model = model
        self.n_workers = n_workers
        self.lr = lr
        self.batch_size = batch_size
        self.backend = backend
        self.aggregation = aggregation
        self.start_method = start_method
        self.scheduler_address = scheduler_address
        self.timeout = timeout
        self.seed = seed

    def fit(self, X, y, *, n_steps: int, partition=None, params=None, eval_set=None,
            eval_every: int | None = None, callback=None) -> "DataParallelSGD":
        """Run ``n_steps`` synchronous steps from ``params``.

        ``params`` defaults to ``model.init_params(seed=derived_rng(seed, 1, ...))``: zeros for
        linear models, and for an MLP weights that are the same on every run with the same seed.
        ``partition`` (a list of ``n_workers`` integer index arrays that hold every row once) says
        which rows each worker holds; by default the rows are cut into ``n_workers`` contiguous
        near-equal shards. ``eval_set`` is a pair (X_test, y_test); the history is recorded every
        ``eval_every`` steps (default: n_steps // 10, at least 1) and after the last.
        ``callback(step, trainer)``, if given, is called after every step. Raises
        ``FloatingPointError`` as soon as the parameters stop being finite.
        """
        params, X, y, partition, eval_set, eval_every = self._check_fit(
            X, y, n_steps, partition, params, eval_set, eval_every, callback)
        seed = check_rng(self.seed, "DataParallelSGD")
        batches = islice(minibatches(len(y), self.batch_size, n_epochs=n_steps, seed=seed), n_steps)
        self.backend_ = backend = self._make_backend()
        self.history_, totals = {}, np.zeros(3)
        self.step_seconds_ = {"compute": [], "wall": []}
        self._record(params, X, y, eval_set, 0, totals)
        with backend:
            backend.start(self.model, make_shards(X, y, partition), self.aggregation)
            self.traffic_ = traffic_per_step(self.model.n_params, self.n_workers, self.aggregation)
            for step, batch in enumerate(batches, start=1):
                params = self._step(backend, params, batch, step, totals)
                if step % eval_every == 0 or step == n_steps:
                    self._record(params, X, y, eval_set, step, totals)
                if callback is not None:
                    callback(step, self)
        self.params_ = params
        return self

    def _step(self, backend, params, batch, step, totals):
        """One synchronous step: the workers' gradient sums, the update, the bookkeeping."""
        started = time.perf_counter()
        gradient_sum, compute_seconds = backend.reduce_gradients(params, batch)
        params = params - self.lr * gradient_sum / len(batch)
        seconds = (compute_seconds, time.perf_counter() - started)
        check_finite(params, self.lr, "DataParallelSGD", f"step {step}")
        totals += [self.traffic_["total"], *seconds]
        self.step_seconds_["compute"].append(seconds[0])
        self.step_seconds_["wall"].append(seconds[1])
        return params

    def _record(self, params, X, y, eval_set, step, totals):
        record(self.history_, self.model, params, X, y, eval_set, step=step)
        for key, value in zip(("bytes_sent", "compute_seconds", "wall_seconds"), totals):
            self.history_.setdefault(key, []).append(float(value))

    def _check_fit(self, X, y, n_steps, partition, params, eval_set, eval_every, callback):
        """Check the constructor's arguments and fit's; return fit's, converted."""
        self._check_settings()
        owner = "DataParallelSGD.fit"
        if params is None:
            params = self.model.init_params(seed=derived_rng(self.seed, 1, "DataParallelSGD"))
        params, X, y = self.model.check_inputs(params, X, y, owner)
        n_workers, batch_size = self.n_workers, self.batch_size
        check_scalar(n_workers, "n_workers", "DataParallelSGD", int, low=1, high=len(y), closed="both")
        check_scalar(batch_size, "batch_size", "DataParallelSGD", int, low=n_workers, closed="left")
        check_scalar(n_steps, "n_steps", owner, int, low=0, high=sys.maxsize, closed="both")
        eval_every = max(1, n_steps // 10) if eval_every is None else eval_every
        check_scalar(eval_every, "eval_every", owner, int, low=1, closed="left")
        check_optional_callable(callback, "callback", owner)
        eval_set = check_eval_set(self.model, eval_set, owner)
        if partition is None:
            partition = np.array_split(np.arange(len(y)), self.n_workers)
        else:
            partition = check_worker_partition(partition, self.n_workers, len(y))
        return params, X, y, partition, eval_set, eval_every

    def _check_settings(self):
        """Check the constructor's arguments that do not depend on the data."""
        owner = "DataParallelSGD"
        check_model(self.model, owner)
        check_scalar(self.lr, "lr", owner, low=0)
        check_scalar(self.timeout, "timeout", owner, low=0, high=MAX_TIMEOUT, closed="right")
        check_choice(self.aggregation, "aggregation", owner, {"server", "ring"})
        check_backend(self.backend, owner)
        check_optional_str(self.start_method, "start_method", owner)
        check_optional_str(self.scheduler_address, "scheduler_address", owner)
        check_rng(self.seed, owner)

    def _make_backend(self):
        return make_backend(self.backend, start_method=self.start_method, timeout=self.timeout,
                            scheduler_address=self.scheduler_address, n_workers=self.n_workers)

    def __repr__(self) -> str:
        return (f"DataParallelSGD({self.model!r}, n_workers={self.n_workers}, lr={self.lr}, "
                f"batch_size={self.batch_size}, backend={self.backend!r}, "
                f"aggregation={self.aggregation!r})")
