"""The one runtime under workers and clients: OS processes that answer requests before a deadline.

Each process sits behind a socket pair and runs :func:`serve`: it replies ``("ok", payload)``
once ready and once per request, ``("error", traceback)`` when its handler raises, and stops
on ``None``. Messages are framed and carry no pickle (:mod:`flcourse.wire`).

What the pool promises, whatever the peers do:

- **Deadlines.** Every exchange (send the requests, read the replies) ends by its deadline,
  however large the messages and however a peer stalls: all sockets are non-blocking and
  served by one selector. A reply longer than the pool's limit is refused unread.
- **Nothing outlives the parent.** A child exits when its parent dies, by SIGKILL, SIGTERM
  or Ctrl-C: on Linux through ``PR_SET_PDEATHSIG``, everywhere through a thread watching the
  parent (its sentinel, or its pid under forkserver); forked children also close the parent's
  ends of the sockets they inherited, so a child sees end-of-file when the parent is gone. While a pool is open in
  the main thread, SIGTERM (if nobody else handles it) exits the parent as Ctrl-C does:
  ``with`` blocks close, processes stop, shared memory is freed.
- **A failed peer is stopped.** After a timeout, an exit or an invalid reply, the process is
  killed, so a half-read message can never be mistaken for the next reply. A peer whose
  handler raised ("error") replied in full and keeps running: its owner decides.
See notebook 04.
"""
from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field

from .._validation import check_choice
from .wire import HEADER, WireError, decode, encode

STARTUP_TIMEOUT = 60.0  # seconds a process may take to start (spawn imports numpy afresh)
MAX_REPLY_BYTES = 64 << 20  # the default limit on one reply
_CHUNK = 1 << 20
_PR_SET_PDEATHSIG = 1


START_METHOD_VARIABLE = "FLCOURSE_START_METHOD"  # overrides the default, e.g. to test under spawn
PRELOAD = ["flcourse.distributed.backends", "flcourse.runners"]  # imported once by a forkserver, not per child


def default_start_method() -> str:
    """The start method a pool uses when none is given.

    ``$FLCOURSE_START_METHOD`` if set (to try another platform's method, say).
    Otherwise the platform's default, except that a parent running more than one thread (a
    Jupyter kernel, a process that used Dask) is never forked: a child forked from a
    multi-threaded process can deadlock on a lock another thread held, and Python 3.12 warns.
    Such a parent starts its processes from a forkserver, as Python 3.14 does by default on
    Linux, or by spawning where there is no forkserver.
    """
    chosen = os.environ.get(START_METHOD_VARIABLE)
    if chosen:
        return check_choice(chosen, START_METHOD_VARIABLE, "the environment",
                            set(mp.get_all_start_methods()))
    method = mp.get_start_method(allow_none=True) or mp.get_all_start_methods()[0]
    if method == "fork" and threading.active_count() > 1:
        return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    return method


def get_context(start_method: str | None, owner: str):
    """The multiprocessing context for ``start_method`` (None: :func:`default_start_method`)."""
    if start_method is not None and not isinstance(start_method, str):
        raise TypeError(f"The 'start_method' parameter of {owner} must be None or one of "
                        f"{sorted(mp.get_all_start_methods())}. Got {start_method!r} instead.")
    method = start_method or default_start_method()
    context = mp.get_context(check_choice(method, "start_method", owner, set(mp.get_all_start_methods())))
    if method == "forkserver":
        context.set_forkserver_preload(PRELOAD)  # takes effect when the server first starts
    return context


@dataclass
class _Transfer:
    """One peer's part of an exchange: what is left to send, what has arrived."""

    outgoing: memoryview
    sent: int = 0
    received: bytearray = field(default_factory=bytearray)
    length: int | None = None

    @property
    def sending(self) -> bool:
        return self.sent < len(self.outgoing)


class ProcessPool:
    """Start ``len(args_list)`` processes running ``target(index, socket, *args)``.

    Parameters
    ----------
    target : callable
        A module-level function (importable under spawn) that ends by calling :func:`serve`.
    args_list : list of tuples
        The extra arguments of each process.
    start_method : {"fork", "spawn", "forkserver"} or None
        None: the platform's default.
    name : str
        What a process is called in messages ("worker 1", "client 7").
    labels : list, optional
        The number each process goes by in messages (default: its index).
    max_reply_bytes : int
        The longest reply accepted; a longer one is refused before it is read.
    """

    def __init__(self, target, args_list, *, start_method: str | None = None, name: str = "worker",
                 owner: str = "ProcessPool", labels=None, max_reply_bytes: int = MAX_REPLY_BYTES):
        context = get_context(start_method, owner)
        fork = context.get_start_method() == "fork"
        self.name, self.max_reply_bytes = name, max_reply_bytes
        self.labels = list(range(len(args_list))) if labels is None else list(labels)
        self.processes, self.sockets, self.stopped = [], [], set()
        self._sigterm = _SigtermAsExit()
        try:
            for index, args in enumerate(args_list):
                self._start(context, target, index, args, fork)
        except BaseException:
            self.close()
            raise

    def _start(self, context, target, index, args, fork):
        parent_end, child_end = socket.socketpair()
        inherited = (*self.sockets, parent_end) if fork else ()  # forked children close these
        process = context.Process(target=_child_main,
                                  args=(target, index, child_end, inherited, os.getpid(), *args),
                                  name=f"flcourse-{self.name}-{index}", daemon=True)
        self.processes.append(process)
        self.sockets.append(parent_end)
        process.start()
        child_end.close()
        parent_end.setblocking(False)

    def exchange(self, requests: dict, timeout: float, max_reply_bytes: int | None = None) -> dict:
        """Send ``requests[index]`` to each process and wait for each reply, all by one deadline.

        Returns {index: (status, payload)} with status "ok" or "error" (payload: the peer's
        reply), "exited" (payload: exit code, None if it closed its socket but still runs),
        "invalid" (payload: what was wrong with the reply) or "timeout".
        """
        frames, cache = {}, {}
        for index, message in requests.items():
            if id(message) not in cache:
                cache[id(message)] = memoryview(encode(message))
            frames[index] = cache[id(message)]
        return self._multiplex(frames, timeout, max_reply_bytes or self.max_reply_bytes)

    def collect(self, indices, timeout: float) -> dict:
        """Wait up to ``timeout`` s for one reply from each of ``indices`` (e.g. "ready")."""
        return self._multiplex({i: memoryview(b"") for i in indices}, timeout, self.max_reply_bytes)

    def _multiplex(self, frames, timeout, limit):
        deadline = time.monotonic() + timeout
        transfers = {i: _Transfer(frame) for i, frame in frames.items()}
        outcomes = {}
        with selectors.DefaultSelector() as selector:
            for i, transfer in transfers.items():
                selector.register(self.sockets[i], _events(transfer), i)
            while transfers and (remaining := deadline - time.monotonic()) > 0:
                for key, events in selector.select(remaining):
                    i = key.data
                    outcome = self._advance(i, transfers[i], events, limit)
                    if outcome is not None:
                        outcomes[i] = outcome
                        selector.unregister(key.fileobj)
                        del transfers[i]
                    elif not transfers[i].sending and key.events != selectors.EVENT_READ:
                        selector.modify(key.fileobj, selectors.EVENT_READ, i)
        outcomes.update({i: ("timeout", None) for i in transfers})
        for i, (status, _) in outcomes.items():
            if status != "ok" and status != "error":
                self.stop(i)
        return outcomes

    def _advance(self, i, transfer, events, limit):
        """Move one peer's transfer on; return its outcome once there is one."""
        peer = self.sockets[i]
        try:
            if events & selectors.EVENT_WRITE and transfer.sending:
                transfer.sent += peer.send(transfer.outgoing[transfer.sent:])
            if not events & selectors.EVENT_READ:
                return None
            chunk = peer.recv(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return self._gone(i)
        if not chunk:
            return self._gone(i)
        transfer.received += chunk
        return _reply_in(transfer, limit)

    def _gone(self, i):
        process = self.processes[i]
        process.join(0.5)
        return "exited", process.exitcode

    def describe(self, index: int, outcome, timeout: float) -> str:
        """A one-line account of a failed ``outcome`` that names the process."""
        status, payload = outcome
        who, process = f"{self.name} {self.labels[index]}", self.processes[index]
        if status == "timeout":
            return f"{who} did not answer within timeout={timeout} s (hung or too slow)"
        if status == "exited" and payload is None:
            return f"{who} (pid {process.pid}) closed its connection"
        if status == "exited":
            return f"{who} (pid {process.pid}) exited with code {payload}"
        if status == "invalid":
            return f"{who} sent an invalid reply: {payload}"
        return f"{who} raised an exception:\n{payload}"

    def alive(self, index: int) -> bool:
        """True while process ``index`` runs and has not been stopped."""
        return self.processes[index].is_alive()

    def stop(self, index: int) -> None:
        """Stop process ``index`` at once (it failed, hangs or is frozen)."""
        self.stopped.add(index)
        process = self.processes[index]
        if process.is_alive():
            process.kill()  # SIGKILL ends a stopped (SIGSTOP) process too
        process.join(5.0)

    def close(self) -> None:
        """Ask every process to stop, kill those still running a second later; safe to call twice."""
        stop_frame = encode(None)
        for peer in self.sockets:
            try:
                peer.send(stop_frame)
            except OSError:  # gone, or its buffer is full: it will be killed below
                pass
        deadline = time.monotonic() + 1.0
        for index, process in enumerate(self.processes):
            if process.pid is not None:
                process.join(max(0.0, deadline - time.monotonic()))
                self.stop(index)
        for peer in self.sockets:
            peer.close()
        self.processes, self.sockets, self.stopped = [], [], set()
        self._sigterm.restore()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _events(transfer):
    return selectors.EVENT_READ | (selectors.EVENT_WRITE if transfer.sending else 0)


def _reply_in(transfer, limit):
    """The reply held by ``transfer.received`` once it is complete, else None."""
    received = transfer.received
    if transfer.length is None and len(received) >= HEADER.size:
        (transfer.length,) = HEADER.unpack_from(received)
        if transfer.length > limit:
            return "invalid", f"a message of {transfer.length:,} bytes, over the limit of {limit:,}"
    if transfer.length is None or len(received) < HEADER.size + transfer.length:
        return None
    if len(received) > HEADER.size + transfer.length:
        return "invalid", "more bytes than one message"
    try:
        reply = decode(memoryview(received)[HEADER.size:])
    except WireError as error:
        return "invalid", str(error)
    if not (isinstance(reply, list) and len(reply) == 2 and reply[0] in ("ok", "error")):
        return "invalid", "not a pair (status, payload)"
    return reply[0], reply[1]


class _SigtermAsExit:
    """While a pool is open in the main thread, SIGTERM exits like Ctrl-C: by an exception,
    so every ``with`` block closes. Left alone if someone else already handles SIGTERM."""

    _depth = 0

    def __init__(self):
        self.installed = False
        if threading.current_thread() is not threading.main_thread():
            return
        if _SigtermAsExit._depth == 0 and signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        if _SigtermAsExit._depth == 0:
            signal.signal(signal.SIGTERM, _exit_on_sigterm)
        _SigtermAsExit._depth += 1
        self.installed = True

    def restore(self):
        if not self.installed:
            return
        self.installed = False
        _SigtermAsExit._depth -= 1
        if _SigtermAsExit._depth == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


# ---------------------------------------------------------------- the child's side

_channel: socket.socket | None = None  # this child's socket, for tests that inject faults


def child_socket() -> socket.socket | None:
    """The socket a pool process talks to its parent over (None outside a pool process)."""
    return _channel


def _child_main(target, index, channel, inherited, parent_pid, *args):
    for peer in inherited:  # forked: the parent's ends would hide the parent's death from us
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


def serve(channel: socket.socket, handle, ready_payload=None) -> None:
    """The loop a pool process runs: reply to each request with ``handle(request)``.

    An exception in ``handle`` is reported and the loop goes on; SystemExit and the like are
    reported and end the process. The loop ends when the parent sends ``None`` or is gone.
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
        chunk = channel.recv(min(n_bytes - len(data), _CHUNK))
        if not chunk:
            raise EOFError("the parent closed the connection")
        data += chunk
    return data


def limit_blas_threads() -> None:
    """One BLAS thread per process, so K processes on K cores do not fight over them."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
