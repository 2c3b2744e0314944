"""What runs in a pool's child process: the start-up, the watch on the parent, the reply loop.

:func:`child_main` is every child's entry point: it closes the sockets a forked child
inherited, arranges to exit as soon as the parent dies (``PR_SET_PDEATHSIG`` on Linux, and
everywhere a thread watching the parent's sentinel, or its pid under forkserver), then runs the
owner's target, which ends by calling :func:`serve`. :func:`serve` replies ``("ok", payload)``
once ready and once per request, ``("error", traceback)`` when the handler raises, and stops on
``None`` or when the parent is gone. Ctrl-C is left to the parent; SIGTERM ends the child.
See notebook 04.
"""
from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable

from .wire import HEADER, WireError, decode, encode

READ_CHUNK = 1 << 20  # the most bytes read from a socket at once
_PR_SET_PDEATHSIG = 1

_channel: socket.socket | None = None  # this child's socket, for tests that inject faults


def child_socket() -> socket.socket | None:
    """The socket a pool process talks to its parent over (None outside a pool process)."""
    return _channel


def child_main(target: Callable, index: int, channel: socket.socket, inherited, parent_pid: int,
               *args) -> None:
    """A pool child's entry point: ``target(index, channel, *args)``, then exit at once.

    ``inherited`` are the parent's ends of the sockets a forked child inherited (closed here,
    or they would hide the parent's death from this child); ``parent_pid`` is the pool's
    process, watched so that this child exits when it dies.
    """
    for peer in inherited:
        peer.close()
    _die_with_parent(parent_pid)
    target(index, channel, *args)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # at once: tearing down numpy & co. under spawn takes a while, and nothing is left to do


def _die_with_parent(parent_pid: int) -> None:
    """Exit as soon as the parent process (``parent_pid``) dies, however it dies."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.name == "posix" and os.getppid() != parent_pid:
        # forkserver: our OS parent is the server (PDEATHSIG fires when it exits, which it does
        # when the parent dies), and multiprocessing's parent sentinel is not the parent's
        watch = (_exit_when_pid_ends, (parent_pid,))
    else:
        parent = mp.parent_process()
        if parent is None or parent.sentinel is None:
            return
        # fork and spawn: the parent is our OS parent, so a new one means it died (a forked
        # sibling may hold the sentinel open; on Linux PDEATHSIG covers that case too).
        watch = (_exit_when_parent_dies, (parent.sentinel, parent_pid if os.name == "posix" else None))
    threading.Thread(target=watch[0], args=watch[1], daemon=True, name="flcourse-parent-watch").start()


def _exit_when_parent_dies(sentinel, parent_pid) -> None:
    from multiprocessing.connection import wait

    while not wait([sentinel], timeout=0.25):
        if parent_pid is not None and os.getppid() != parent_pid:
            break
    os._exit(1)


def _exit_when_pid_ends(parent_pid) -> None:
    while True:
        time.sleep(0.25)
        try:
            os.kill(parent_pid, 0)  # signal 0 only asks whether the process exists
        except (ProcessLookupError, PermissionError):  # gone, or the pid is someone else's now
            os._exit(1)


def serve(channel: socket.socket, handle: Callable, ready_payload=None) -> None:
    """The loop a pool process runs: reply to each request with ``handle(request)``.

    An exception in ``handle`` is reported and the loop goes on; SystemExit and the like are
    reported and end the process. The loop ends when the parent sends ``None`` or is gone.

    Parameters
    ----------
    channel : socket.socket
        The child's end of its socket pair (the ``channel`` its target received).
    handle : callable
        ``handle(request) -> payload``; request and payload are anything :mod:`~.wire`
        carries.
    ready_payload : optional
        Sent with the first "ok", which tells the parent this process is ready.
    """
    global _channel
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    limit_blas_threads()
    channel.setblocking(True)
    _channel = channel
    try:
        _send(channel, ("ok", ready_payload))
        while (message := _receive(channel)) is not None:
            try:
                reply = ("ok", handle(message))
            except Exception:  # noqa: BLE001 - the parent decides what a failure means
                reply = ("error", traceback.format_exc())
            _send(channel, reply)
    except (EOFError, OSError):
        pass  # the parent has gone: nothing to report to
    except BaseException:  # noqa: BLE001 - SystemExit from user code, say
        _send(channel, ("error", traceback.format_exc()))


def _send(channel, reply) -> None:
    try:
        frame = encode(reply)
    except WireError as error:
        frame = encode(("error", f"the reply could not be sent: {error}"))
    channel.sendall(frame)


def _receive(channel):
    (length,) = HEADER.unpack(_read_exactly(channel, HEADER.size))
    return decode(_read_exactly(channel, length))


def _read_exactly(channel, n_bytes: int) -> bytearray:
    data = bytearray()
    while len(data) < n_bytes:
        chunk = channel.recv(min(n_bytes - len(data), READ_CHUNK))
        if not chunk:
            raise EOFError("the parent closed the connection")
        data += chunk
    return data


def limit_blas_threads() -> None:
    """One BLAS thread per process, so K processes on K cores do not fight over them."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
