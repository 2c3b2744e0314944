"""Helpers for the fault tests: models and clients that misbehave (importable under spawn too),
and a check whether a process still exists."""
import multiprocessing
import os
import time

import numpy as np

import flcourse as fl

SENTINEL = 99.0  # a feature value that only the faulty worker's shard holds


class FaultyModel(fl.SoftmaxRegression):
    """Softmax regression that raises, exits or hangs in a worker whose batch holds the sentinel."""

    def __init__(self, *, n_features, n_classes, fault):
        super().__init__(n_features=n_features, n_classes=n_classes)
        self.fault = fault

    def _misbehave_on_sentinel(self, X):
        in_worker = multiprocessing.current_process().name.startswith("flcourse-worker")
        if in_worker and (X[:, -1] == SENTINEL).any():
            if self.fault == "raise":
                raise ArithmeticError("injected fault")
            if self.fault == "exit":
                os._exit(3)
            time.sleep(600)  # "hang"

    def loss_grad(self, params, X, y, need_grad=True):
        self._misbehave_on_sentinel(X)
        return super().loss_grad(params, X, y, need_grad)

    def grad_unchecked(self, params, X, y):
        self._misbehave_on_sentinel(X)
        return super().grad_unchecked(params, X, y)


class FaultyClient:
    """A client that misbehaves in a given way from a given round on (importable under spawn)."""

    def __init__(self, client, fault, from_round=1):
        self.client, self.fault, self.from_round = client, fault, from_round

    def fit(self, params, config):
        if config["server_round"] < self.from_round:
            return self.client.fit(params, config)
        params, n_examples, metrics = self.client.fit(params, config)
        if self.fault == "raise":
            raise ArithmeticError("injected fault")
        if self.fault == "exit":
            os._exit(3)
        if self.fault == "hang":
            time.sleep(600)
        broken = {
            "shape": lambda: (params[:-10], n_examples, metrics),
            "nan": lambda: (params * np.nan, n_examples, metrics),
            "inf": lambda: (params + np.inf, n_examples, metrics),
            "type": lambda: (params.tolist(), n_examples, metrics),
            "n_examples": lambda: (params, 0, metrics),
        }
        return broken[self.fault]()

    def evaluate(self, params, config):
        return self.client.evaluate(params, config)


def pid_exists(pid: int) -> bool:
    """True while a process with this pid exists (a zombie counts until it is reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# ---------------------------------------------------------------- the fault-injection matrix
# (tests/test_fault_matrix.py runs tests/fault_matrix_parent.py once per case)

FAULTS = ("raise", "exit", "sigkill", "sigstop", "stall", "huge")
STALL_BYTES = 1000  # the partial frame of "stall": a header announcing this many bytes, half of them


def inject(fault: str) -> None:
    """Misbehave inside a pool process's handler, as ``fault`` says.

    "raise" and "exit" fail the handler; "stall" writes half a frame on the socket to the
    parent and sleeps; "huge" writes a header announcing 2**40 bytes and sleeps; "slow" just
    sleeps. "sigkill" and "sigstop" come from outside, so there is nothing to do here.
    """
    from flcourse.runtime import child_socket
    from flcourse.runtime import HEADER

    if fault == "raise":
        raise ArithmeticError("injected fault")
    if fault == "exit":
        os._exit(3)
    if fault == "stall":
        child_socket().sendall(HEADER.pack(STALL_BYTES) + bytes(STALL_BYTES // 2))
    if fault == "huge":
        child_socket().sendall(HEADER.pack(2**40))
    if fault in ("stall", "huge", "slow"):
        time.sleep(600)


_gradient_calls = [0]  # per process: how many gradients this worker process has computed


class StepFaultModel(fl.SoftmaxRegression):
    """Softmax regression whose gradient misbehaves from the ``from_step``-th step on, in the
    workers named in ``faults`` ({worker index: fault, as :func:`inject` takes})."""

    def __init__(self, *, n_features, n_classes, faults, from_step=2):
        super().__init__(n_features=n_features, n_classes=n_classes)
        self.faults, self.from_step = faults, from_step

    def grad_unchecked(self, params, X, y):
        name = multiprocessing.current_process().name
        if name.startswith("flcourse-worker-"):
            _gradient_calls[0] += 1
            fault = self.faults.get(int(name.rsplit("-", 1)[1]))
            if fault is not None and _gradient_calls[0] >= self.from_step:
                inject(fault)
        return super().grad_unchecked(params, X, y)


class RoundFaultClient:
    """A client whose ``fit`` misbehaves as ``fault`` (see :func:`inject`) from round
    ``from_round`` on, before doing any work; None: a well-behaved client."""

    def __init__(self, client, fault=None, from_round=2):
        self.client, self.fault, self.from_round = client, fault, from_round
        self.cid = client.cid

    def fit(self, params, config):
        if self.fault is not None and config["server_round"] >= self.from_round:
            inject(self.fault)
        return self.client.fit(params, config)

    def evaluate(self, params, config):
        return self.client.evaluate(params, config)


def process_state(pid: int, started=None):
    """The state letter of process ``pid`` from /proc (Linux), "Z" for a zombie; None once it
    is gone, or when the pid now belongs to another process (one not started at ``started``,
    the start time in clock ticks that :func:`process_start_time` read)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    if started is not None and int(fields[19]) != started:
        return None
    return fields[0]


def process_start_time(pid: int):
    """When process ``pid`` started, in clock ticks since boot (Linux); None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[19])
    except (FileNotFoundError, ProcessLookupError):
        return None
