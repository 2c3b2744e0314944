"""A Dask cluster's life cycle: connect to a running scheduler, or start a LocalCluster and own it.

A back end (or, later, a federated runner) that runs its work on Dask gets its client from
:func:`connect_dask`; the :class:`DaskCluster` returned closes what it opened, and only that: a
cluster somebody else started keeps running. See notebook 04.
"""
from __future__ import annotations

import os


class DaskCluster:
    """A Dask client, and the LocalCluster behind it when this process started one.

    Use :func:`connect_dask` to make one; :meth:`close` closes the client, then the cluster if it is
    ours. A context manager.
    """

    def __init__(self, client, cluster=None):
        self.client, self.cluster = client, cluster

    def close(self) -> None:
        """Close the client and, if this process started it, the LocalCluster; safe twice."""
        for resource in (self.client, self.cluster):
            if resource is not None:
                resource.close()
        self.client = self.cluster = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self) -> str:
        own = "LocalCluster" if self.cluster is not None else "a scheduler started elsewhere"
        return f"DaskCluster({own}, open={self.client is not None})"


def connect_dask(scheduler_address: str | None, *, n_workers: int, timeout: float,
            owner: str) -> DaskCluster:
    """Connect to the scheduler at ``scheduler_address``, or start a LocalCluster (None).

    Parameters
    ----------
    scheduler_address : str or None
        "tcp://host:8786"; None starts a LocalCluster on this machine with one single-threaded
        worker process per task slot, ``n_workers`` of them, at most one per core (Dask's nanny
        gives each worker one BLAS thread).
    n_workers : int
    timeout : float
        Seconds to wait for a scheduler (at most 10).
    owner : str
        Whose ``scheduler_address`` parameter an error names.

    Raises
    ------
    ImportError
        Without dask.distributed (``pip install 'flcourse[dask]'``).
    ValueError
        When nothing answers at ``scheduler_address``.
    """
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ImportError("backend='dask' needs dask.distributed: pip install 'flcourse[dask]'") from None
    if scheduler_address is None:
        import logging

        cluster = LocalCluster(n_workers=min(n_workers, os.cpu_count() or 1), threads_per_worker=1,
                               processes=True, dashboard_address=":0", silence_logs=logging.ERROR)
        try:
            return DaskCluster(Client(cluster), cluster)
        except BaseException:
            cluster.close()
            raise
    try:
        return DaskCluster(Client(scheduler_address, timeout=f"{min(timeout, 10.0)}s"))
    except (OSError, TimeoutError, ValueError) as error:
        raise ValueError(f"The 'scheduler_address' parameter of {owner} must be the "
                         f"address of a running Dask scheduler. Got {scheduler_address!r}, "
                         f"which could not be reached ({type(error).__name__}: {error}).") from None
