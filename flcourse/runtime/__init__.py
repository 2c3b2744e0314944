"""The one runtime under workers and clients: OS processes that answer requests before a deadline.

Each process sits behind a socket pair and runs :func:`serve`: it replies ``("ok", payload)``
once ready and once per request, ``("error", traceback)`` when its handler raises, and stops
on ``None``. Messages are framed and carry no pickle (:mod:`~flcourse.runtime.wire`).

What the pool promises, whatever the peers do:

- **Deadlines.** Every exchange (send the requests, read the replies) ends by its deadline,
  however large the messages and however a peer stalls: all sockets are non-blocking and
  served by one selector. A reply longer than the pool's limit is refused unread.
- **Nothing outlives the parent.** A child exits when its parent dies, by SIGKILL, SIGTERM
  or Ctrl-C: on Linux through ``PR_SET_PDEATHSIG``, everywhere through a thread watching the
  parent (its sentinel, or its pid under forkserver); forked children also close the parent's
  ends of the sockets they inherited, so a child sees end-of-file when the parent is gone.
  While a pool is open in the main thread, SIGTERM (if nobody else handles it) exits the
  parent as Ctrl-C does: ``with`` blocks close, processes stop, shared memory is freed.
- **A failed peer is stopped.** After a timeout, an exit or an invalid reply, the process is
  killed, so a half-read message can never be mistaken for the next reply. A peer whose
  handler raised ("error") replied in full and keeps running: its owner decides.

Modules: :mod:`~.wire` (framing), :mod:`~.start` (start methods), :mod:`~.children` (the
child's side), :mod:`~.sigterm` (the parent's SIGTERM), :mod:`~.pool` (the parent's side),
:mod:`~.shm` (shared memory), :mod:`~.dask_cluster` (a Dask cluster's life cycle). The runtime
knows nothing of models, shards or clients. See notebook 04.
"""
from .children import child_socket, limit_blas_threads, serve
from .dask_cluster import DaskCluster, connect_dask
from .pool import MAX_REPLY_BYTES, STARTUP_TIMEOUT, ProcessPool
from .shm import SHM_PREFIX, SharedBlock, SharedLayout, attach
from .sigterm import SigtermAsExit
from .start import PRELOAD, START_METHOD_VARIABLE, default_start_method, get_context
from .wire import HEADER, WireError, decode, encode, encoded_size

__all__ = ["HEADER", "MAX_REPLY_BYTES", "PRELOAD", "SHM_PREFIX", "START_METHOD_VARIABLE",
           "STARTUP_TIMEOUT", "DaskCluster", "ProcessPool", "SharedBlock", "SharedLayout",
           "SigtermAsExit", "WireError", "attach", "child_socket", "connect_dask", "decode",
           "default_start_method", "encode", "encoded_size", "get_context", "limit_blas_threads",
           "serve"]
