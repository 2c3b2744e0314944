import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import flcourse as fl

# One BLAS thread per process: tests on 2 cores run alongside worker processes and notebooks,
# and oversubscribed BLAS threads make them crawl.
threadpool_limits(1)


@pytest.fixture(scope="session")
def digits():
    return fl.load_digits(seed=0)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="module")
def dask_scheduler():
    """Address of a two-process Dask LocalCluster shared by a module's tests that need one (per
    module, not per session: its threads end with it, so later tests never fork a process that
    runs them)."""
    import logging

    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=logging.ERROR) as cluster:
        yield cluster.scheduler_address


def pytest_collection_modifyitems(session, config, items):
    """Tests that start Dask run last. Dask leaves threads running for the rest of the process
    (its offload pool, its event loop), and a process that runs threads must not fork: the
    tests that fork workers on purpose would otherwise do just that (Python 3.12 warns)."""
    uses_dask = [item for item in items if "dask" in item.nodeid.lower()
                 or "dask_scheduler" in getattr(item, "fixturenames", ())]
    items[:] = [item for item in items if item not in uses_dask] + uses_dask
