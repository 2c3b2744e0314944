"""One case of the fault-injection matrix, as the parent process (run by test_fault_matrix.py).

    python tests/fault_matrix_parent.py KIND FAULT START_METHOD MODE

KIND is "worker" (DataParallelSGD over 2 worker processes) or "client" (a Server over 2
ProcessClients); FAULT is one of fault_helpers.FAULTS; MODE is "alive", "sigterm" or
"sigkill" (what the test will do to this process). Peer 1 misbehaves in the second step or
round. With MODE "sigterm" or "sigkill" peer 0 is slow in that step too (it sleeps), so
that this process is still inside the faulty exchange when the test signals it, whatever the
fault: a peer that raises, exits, is killed or sends a huge header is dealt with at once.

Prints one JSON line once the fault is in place (the pids of the children, the resource
tracker and the forkserver, the shared-memory segments), just before the faulty exchange
starts, and one JSON line with the outcome: the error, and the seconds from the first line to
the error being raised ("reported") and to its reaching the caller after the clean-up
("elapsed").

FLCOURSE_FAULT_SABOTAGE=<name> disables one protection of the runtime, to show that the
matrix fails without it: "die-with-parent" (children do nothing when the parent dies),
"pdeathsig" (no PR_SET_PDEATHSIG: the parent-watching thread alone), "sigterm-exit"
(SIGTERM keeps its default action) or "deadline" (every exchange waits 4 times too long).
It is applied at import, so spawned children (which import this script) have it too.
SIGUSR1 makes this process print every thread's traceback on stderr (the test's question to
a parent that hangs).
"""
import faulthandler
import json
import os
import signal
import sys
import time
import traceback
import types

import numpy as np
from fault_helpers import RoundFaultClient, StepFaultModel

import flcourse as fl
from flcourse.runtime import children, pool, sigterm

TIMEOUT = {"alive": 1.0, "sigterm": 10.0, "sigkill": 10.0}  # killed long before 10 s
WARM_UP_TIMEOUT = 60.0  # for the first, healthy step or round: spawned peers on a loaded
# machine may need more than 1 s for it; the faulty exchange then gets TIMEOUT[mode]
SIGNALS = {"sigkill": signal.SIGKILL, "sigstop": signal.SIGSTOP}


def _sabotage(name):
    """Disable one protection of flcourse.runtime (see the module docstring)."""
    if name == "die-with-parent":
        children._die_with_parent = lambda parent_pid: None
    elif name == "pdeathsig":
        children.ctypes = types.SimpleNamespace(CDLL=_no_libc)
    elif name == "sigterm-exit":
        sigterm.SigtermAsExit.__init__ = lambda self: setattr(self, "installed", False)
    elif name == "deadline":
        multiplex = pool.ProcessPool._multiplex
        pool.ProcessPool._multiplex = lambda self, frames, timeout, limit: \
            multiplex(self, frames, 4 * timeout, limit)
    elif name:
        raise ValueError(f"unknown sabotage {name!r}")


def _no_libc(*args, **kwargs):
    raise OSError("sabotaged: no libc")


_sabotage(os.environ.get("FLCOURSE_FAULT_SABOTAGE", ""))


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def announce(pids, fault, segments, clock):
    """Signal peer 1 if the fault comes from outside, print the case's resources, start the clock."""
    if fault in SIGNALS:
        os.kill(pids[1], SIGNALS[fault])
    from multiprocessing import forkserver, resource_tracker

    emit(event="in_place", parent=os.getpid(), children=pids, segments=segments,
         resource_tracker=resource_tracker._resource_tracker._pid,
         forkserver=forkserver._forkserver._forkserver_pid)
    clock.append(time.monotonic())


def run_workers(fault, start_method, mode, clock):
    """Data-parallel SGD, 2 workers, full batches of 40,000 indices (320 KB per worker)."""
    from flcourse.distributed import DataParallelSGD

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40_000, 4)), rng.integers(0, 3, 40_000)
    faults = {1: fault} if mode == "alive" else {0: "slow", 1: fault}
    model = StepFaultModel(n_features=4, n_classes=3, faults=faults, from_step=2)
    trainer = DataParallelSGD(model, n_workers=2, batch_size=len(y), backend="processes",
                              start_method=start_method, timeout=WARM_UP_TIMEOUT, seed=0)

    def callback(step, trainer):
        if step == 1:
            trainer.backend_.timeout = TIMEOUT[mode]  # read by every step
            pids = [p.pid for p in trainer.backend_.processes]
            announce(pids, fault, [trainer.backend_.memory_name], clock)

    trainer.fit(X, y, n_steps=3, eval_every=1000, callback=callback)


def run_clients(fault, start_method, mode, clock):
    """A Server over 2 ProcessClients training a 600 KB MLP on 100 digits each."""
    from flcourse.federated import FedAvg, make_clients
    from flcourse.federated.server import ProcessClients, Server

    digits = fl.load_digits(seed=0)
    model = fl.MLP(n_features=64, n_hidden=1000, n_classes=10)
    clients = make_clients(model, digits.X_train[:200], digits.y_train[:200],
                           [np.arange(0, 100), np.arange(100, 200)])
    faults = {1: fault} if mode == "alive" else {0: "slow", 1: fault}
    clients = [RoundFaultClient(c, faults.get(c.cid), from_round=2) for c in clients]
    server = Server(model, FedAvg(local_epochs=1, batch_size=None, lr=0.1),
                    ProcessClients(clients, start_method=start_method),
                    round_timeout=WARM_UP_TIMEOUT, on_invalid="fail", seed=0)

    def callback(server_round, server):
        if server_round == 1:
            server.round_timeout = TIMEOUT[mode]  # read by every round
            announce([p.pid for p in server.clients.processes], fault, [], clock)

    server.run(3, callback=callback)


def time_the_report(clock):
    """Record in ``clock`` when the first WorkerError or ClientFailure is made once the clock
    runs: the parent's report, before the clean-up on the way to the caller (which gives the
    healthy peers up to 1 s to stop)."""
    from flcourse.distributed import WorkerError
    from flcourse.federated.runners import ClientFailure

    for error in (WorkerError, ClientFailure):
        def timed(self, *args, _init=error.__init__):
            if len(clock) == 1:
                clock.append(time.monotonic())
            _init(self, *args)

        error.__init__ = timed


def main(kind, fault, start_method, mode):
    clock = []  # when the faulty exchange started, when the parent reported the failure
    elapsed = lambda: time.monotonic() - clock[0] if clock else None  # noqa: E731
    time_the_report(clock)
    try:
        (run_workers if kind == "worker" else run_clients)(fault, start_method, mode, clock)
    except SystemExit as stop:
        in_exchange = any(f.name == "_multiplex" for f in traceback.extract_tb(stop.__traceback__))
        emit(event="outcome", outcome="SystemExit", code=stop.code, elapsed=elapsed(),
             in_exchange=in_exchange)
        raise
    except Exception as error:  # noqa: BLE001 - the outcome is what the test checks
        reported = clock[1] - clock[0] if len(clock) == 2 else None
        emit(event="outcome", outcome=type(error).__name__, message=str(error), elapsed=elapsed(),
             reported=reported, timeout=TIMEOUT[mode])
        return
    emit(event="outcome", outcome="finished", elapsed=elapsed())


if __name__ == "__main__":
    faulthandler.register(signal.SIGUSR1)  # the test's way of asking a hung parent where it is
    kind, fault, start_method, mode = sys.argv[1:5]
    main(kind, fault, start_method, mode)
