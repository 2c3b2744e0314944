"""Distributed training: shards, ring all-reduce, back ends and synchronous data-parallel SGD.

See notebook 04.
"""
from .data_parallel import (BYTES_PER_FLOAT, DataParallelSGD, Shard, check_backend,
                            check_worker_partition, make_shards, ring_allreduce, traffic_per_step)
from .backends import (SHM_PREFIX, DaskBackend, InProcessBackend, ProcessBackend, WorkerError,
                       make_backend)

__all__ = ["BYTES_PER_FLOAT", "DaskBackend", "DataParallelSGD", "InProcessBackend",
           "ProcessBackend", "SHM_PREFIX", "Shard", "WorkerError", "check_backend",
           "check_worker_partition", "make_backend", "make_shards", "ring_allreduce",
           "traffic_per_step"]
