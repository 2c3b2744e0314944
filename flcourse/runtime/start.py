"""How the runtime's processes start: the start method, and what a forkserver imports once.

A parent running more than one thread (a Jupyter kernel, a process that used Dask) is never
forked; ``$FLCOURSE_START_METHOD`` chooses another method, to try another platform's. See
notebook 04.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import threading

from .._validation import check_choice

START_METHOD_VARIABLE = "FLCOURSE_START_METHOD"  # overrides the default, e.g. to test under spawn
# Imported once by a forkserver, not by each child. A name that cannot be imported is skipped
# (multiprocessing ignores an ImportError in the preload), so the list may name a stack that a
# given checkout lacks.
PRELOAD = ["flcourse.distributed.backends", "flcourse.federated.runners"]


def default_start_method() -> str:
    """The start method a pool uses when none is given.

    ``$FLCOURSE_START_METHOD`` if set (to try another platform's method, say).
    Otherwise the platform's default, except that a parent running more than one thread (a
    Jupyter kernel, a process that used Dask) is never forked: a child forked from a
    multi-threaded process can deadlock on a lock another thread held, and Python 3.12 warns.
    Such a parent starts its processes from a forkserver, as Python 3.14 does by default on
    Linux, or by spawning where there is no forkserver.

    Returns
    -------
    method : {"fork", "spawn", "forkserver"}
    """
    chosen = os.environ.get(START_METHOD_VARIABLE)
    if chosen:
        return check_choice(chosen, START_METHOD_VARIABLE, "the environment",
                            set(mp.get_all_start_methods()))
    method = mp.get_start_method(allow_none=True) or mp.get_all_start_methods()[0]
    if method == "fork" and threading.active_count() > 1:
        return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    return method


def get_context(start_method: str | None, owner: str) -> mp.context.BaseContext:
    """The multiprocessing context for ``start_method`` (None: :func:`default_start_method`).

    A forkserver context preloads :data:`PRELOAD`. Errors name ``owner``'s ``start_method``
    parameter.
    """
    if start_method is not None and not isinstance(start_method, str):
        raise TypeError(f"The 'start_method' parameter of {owner} must be None or one of "
                        f"{sorted(mp.get_all_start_methods())}. Got {start_method!r} instead.")
    method = start_method or default_start_method()
    context = mp.get_context(check_choice(method, "start_method", owner, set(mp.get_all_start_methods())))
    if method == "forkserver":
        context.set_forkserver_preload(PRELOAD)  # takes effect when the server first starts
    return context
