"""A model that misbehaves on purpose in one worker process, for the fault demonstrations.

Chapter 04 shows what the process back end does when a worker raises, exits or hangs. The
faults are made with means that exist on Linux, macOS and Windows alike (an exception,
``os._exit``, ``time.sleep``), and the model lives in this module so that a worker started by
spawn or forkserver can import it (a class defined in a notebook cannot be; chapter 04, defect
7). In the parent process, and with the in-process back end, the model behaves exactly like the
one it wraps.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import time

from ._validation import check_choice, check_scalar
from .models import Model, check_model

FAULTS = ("raise", "exit", "hang")


class FaultyModel(Model):
    """``model``, except that worker process ``worker`` misbehaves from its ``at_step``-th gradient on.

    A data-parallel worker computes one gradient per step, so ``at_step`` counts steps.

    Parameters
    ----------
    model : Model
        The model to wrap: losses, gradients and predictions are its own.
    fault : {"raise", "exit", "hang"}
        What worker ``worker`` does: raise ``ArithmeticError``, exit at once with code 3
        (``os._exit``, as a crash would), or sleep ``hang_seconds`` (as a hung worker would;
        the back end's timeout ends it).
    worker : int, default=1
        The index of the worker process that misbehaves (its process is "flcourse-worker-<i>").
    at_step : int, default=3
        The first gradient, counted from 1 in that process, that misbehaves.
    hang_seconds : float, default=600.0
        How long ``fault="hang"`` sleeps.
    """

    def __init__(self, model: Model, *, fault: str, worker: int = 1, at_step: int = 3,
                 hang_seconds: float = 600.0):
        owner = "FaultyModel"
        self.model = check_model(model, owner)
        self.fault = check_choice(fault, "fault", owner, set(FAULTS))
        self.worker = check_scalar(worker, "worker", owner, int, low=0, closed="left")
        self.at_step = check_scalar(at_step, "at_step", owner, int, low=1, closed="left")
        self.hang_seconds = check_scalar(hang_seconds, "hang_seconds", owner, low=0, closed="left")
        self.n_params, self.n_classes = model.n_params, model.n_classes
        self.n_features, self.l2 = model.n_features, model.l2
        self._steps = 0

    def init_params(self, seed=None):
        return self.model.init_params(seed)

    def grad_unchecked(self, params, X, y):
        self._misbehave_when_due()
        return self.model.grad_unchecked(params, X, y)

    def loss_grad(self, params, X, y, need_grad=True):
        return self.model.loss_grad(params, X, y, need_grad)

    def predict_unchecked(self, params, X):
        return self.model.predict_unchecked(params, X)

    def weights_mask(self):
        return self.model.weights_mask()

    def _misbehave_when_due(self) -> None:
        if mp.current_process().name != f"flcourse-worker-{self.worker}":
            return
        self._steps += 1
        if self._steps < self.at_step:
            return
        if self.fault == "raise":
            raise ArithmeticError(f"injected fault at step {self._steps}")
        if self.fault == "exit":
            os._exit(3)
        time.sleep(self.hang_seconds)
