"""The parent's side of the runtime: a pool of processes and its exchanges, all by one deadline.

:class:`ProcessPool` starts its processes (each runs :func:`~.children.child_main`, then the
owner's target, which serves requests), sends them requests and reads their replies. Every
exchange ends by its deadline, however large the messages and however a peer stalls: all
sockets are non-blocking and served by one selector, and a reply longer than the pool's limit
is refused unread. Each process's part of an exchange ends in one outcome: "ok" or "error"
(the peer replied; "error" carries the traceback of its handler, and the peer keeps running:
its owner decides), "exited", "invalid" or "timeout" (the peer is then killed, so a half-read
message can never be mistaken for the next reply). :meth:`ProcessPool.describe` puts a failed
outcome in one line that names the process. See notebook 04.
"""
from __future__ import annotations

import os
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .children import READ_CHUNK, child_main
from .sigterm import SigtermAsExit
from .start import get_context
from .wire import HEADER, WireError, decode, encode

STARTUP_TIMEOUT = 60.0  # seconds a process may take to start (spawn imports numpy afresh)
MAX_REPLY_BYTES = 64 << 20  # the default limit on one reply


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
        A module-level function (importable under spawn) that ends by calling
        :func:`~.children.serve`.
    args_list : list of tuples
        The extra arguments of each process.
    start_method : {"fork", "spawn", "forkserver"} or None
        None: :func:`~.start.default_start_method`.
    name : str
        What a process is called in messages ("worker 1", "client 7").
    owner : str
        Whose ``start_method`` parameter an error names ("ProcessBackend").
    labels : list, optional
        The number each process goes by in messages (default: its index).
    max_reply_bytes : int
        The longest reply accepted; a longer one is refused before it is read.
    """

    def __init__(self, target: Callable, args_list: list, *, start_method: str | None = None,
                 name: str = "worker", owner: str = "ProcessPool", labels=None,
                 max_reply_bytes: int = MAX_REPLY_BYTES):
        context = get_context(start_method, owner)
        fork = context.get_start_method() == "fork"
        self.name, self.max_reply_bytes = name, max_reply_bytes
        self.labels = list(range(len(args_list))) if labels is None else list(labels)
        self.processes, self.sockets, self.stopped = [], [], set()
        self._sigterm = SigtermAsExit()
        try:
            for index, args in enumerate(args_list):
                self._start(context, target, index, args, fork)
        except BaseException:
            self.close()
            raise

    def _start(self, context, target, index, args, fork):
        parent_end, child_end = socket.socketpair()
        inherited = (*self.sockets, parent_end) if fork else ()  # forked children close these
        process = context.Process(target=child_main,
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
            chunk = peer.recv(READ_CHUNK)
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

    def __repr__(self) -> str:
        alive = sum(process.is_alive() for process in self.processes)
        return (f"ProcessPool(name={self.name!r}, processes={len(self.processes)}, alive={alive}, "
                f"max_reply_bytes={self.max_reply_bytes})")

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
