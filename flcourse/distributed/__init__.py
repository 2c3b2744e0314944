"""Distributed training: shards, collectives, back ends and synchronous data-parallel SGD.

- :mod:`~.shards`: :class:`Shard`, :func:`make_shards`, the check of a workers' partition;
- :mod:`~.collectives`: ring all-reduce, in place too, and the bytes per step;
- :mod:`~.backends`: where the workers run (in-process, OS processes, Dask) and what they do;
- :mod:`~.data_parallel`: :class:`DataParallelSGD`, the one loop.

Each module imports only those above it in this list. See notebook 04.
"""
from .shards import Shard, check_worker_partition, make_shards
from .collectives import BYTES_PER_FLOAT, ring_allreduce, ring_allreduce_in_place, traffic_per_step
from .backends import (BACKEND_NAMES, DaskBackend, InProcessBackend, ProcessBackend, WorkerError,
                       check_backend, make_backend, shard_layout, worker_main)
from .data_parallel import MAX_TIMEOUT, DataParallelSGD

__all__ = ["BACKEND_NAMES", "BYTES_PER_FLOAT", "MAX_TIMEOUT", "DaskBackend", "DataParallelSGD",
           "InProcessBackend", "ProcessBackend", "Shard", "WorkerError", "check_backend",
           "check_worker_partition", "make_backend", "make_shards", "ring_allreduce",
           "ring_allreduce_in_place", "shard_layout", "traffic_per_step", "worker_main"]
