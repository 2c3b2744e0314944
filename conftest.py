"""Loaded by pytest before anything else, for the tests and for the notebooks nbval runs.

One BLAS thread per process: the suite runs on 2 cores alongside notebook kernels and worker
processes, and oversubscribed BLAS threads make everything crawl (and timings meaningless).
The notebook kernels nbval starts inherit these variables.

The kernels also start their processes by spawning, as on macOS and Windows (see below).
"""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

# Every chapter runs in the suite as it would on macOS and Windows: its kernel starts processes
# by spawning (multiprocessing's default there), and a fork of the kernel is an error. The
# committed outputs were made with this platform's defaults, so the suite also checks that the
# start method changes no output. An IPython startup file does it, in the kernels alone.
SPAWN_STARTUP = '''\
# Written by the suite's conftest.py: this kernel runs as on macOS and Windows.
import multiprocessing as _mp
import os as _os

_mp.set_start_method("spawn", force=True)


def _no_fork(*args, **kwargs):
    raise RuntimeError("os.fork() in a notebook kernel: the suite runs every chapter under spawn")


_os.fork = _no_fork
'''


def _spawn_ipython_dir(config) -> str:
    if not hasattr(config, "_flcourse_ipython_dir"):
        folder = Path(tempfile.mkdtemp(prefix="flcourse-ipython-"))
        startup = folder / "profile_default" / "startup"
        startup.mkdir(parents=True)
        (startup / "00-spawn.py").write_text(SPAWN_STARTUP)
        config._flcourse_ipython_dir = str(folder)
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
    return config._flcourse_ipython_dir


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    """A notebook's kernel starts in its first cell's set-up: give it the spawn start-up file."""
    if item.path.suffix != ".ipynb":
        yield
        return
    saved = os.environ.get("IPYTHONDIR")
    os.environ["IPYTHONDIR"] = _spawn_ipython_dir(item.config)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("IPYTHONDIR", None)
        else:
            os.environ["IPYTHONDIR"] = saved
