"""Local training: minibatch SGD with a pluggable correction, for one client or K at once.

Every algorithm of the course trains locally with the same loop,

    w <- w - lr * (grad F_k(w) + correction(w)),

and differs only in the correction:

==========================  ===============================  ==========================
algorithm                   correction(w)                    config / state it reads
==========================  ===============================  ==========================
FedAvg, FedSGD              0                                -
FedProx (Li et al. 2020)    mu * (w - w_t)                   ``config["mu"]``
SCAFFOLD (option II)        c - c_i                          ``config["control"]``, c_i
==========================  ===============================  ==========================

:class:`LocalStep` builds the correction of a round from the config and the client's state;
a new algorithm subclasses it. :func:`local_sgd` runs K clients with equally many samples in
one vectorised pass, and row k of its result is bit for bit what client k computes alone (a
stack of one), whatever the correction: every correction is elementwise in the rows.
See notebooks 05 and 06.
"""
from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from ..models import Model


class LocalStep:
    """The local update rule: the gradient plus the proximal and control-variate corrections.

    ``corrections(start, config, controls)`` returns the terms to add to the gradient of a
    stack of models; each term is a function of the stack ``w`` of shape (K, n_params).
    Subclass it and extend :meth:`corrections` for a new algorithm; clients that share a
    step class still train together.
    """

    def corrections(self, start: np.ndarray, config: dict, controls: np.ndarray | None) -> list:
        """The correction terms of a round: FedProx's mu (w - w_t), SCAFFOLD's c - c_i."""
        terms = []
        mu = config.get("mu", 0.0)
        if mu:
            terms.append(lambda w: mu * (w - start))
        if controls is not None:
            offset = config["control"][None, :] - controls  # (K, n_params), fixed for the round
            terms.append(lambda w: offset)
        return terms

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def full_batch_if_none(batch_size, n_samples: int) -> int:
    """Return ``batch_size`` as an int, reading None or inf as "the whole local dataset"."""
    if batch_size is None or batch_size == math.inf:
        return n_samples
    return int(batch_size)


def n_local_steps(n_samples: int, config: dict) -> int:
    """K, the number of SGD steps of one local fit: epochs x batches per epoch."""
    batch_size = full_batch_if_none(config["batch_size"], n_samples)
    return config["local_epochs"] * -(-n_samples // batch_size)


def local_sgd(model: Model, params, X, y, cids, config: dict, *, step: LocalStep | None = None,
              controls: np.ndarray | None = None) -> npt.NDArray[np.float64]:
    """The local training of K clients with equally many samples at once.

    Client k's minibatch order comes from ``(config["seed"], cids[k])``, and its row of the
    result is bit for bit what it computes alone, so grouping clients changes the speed of a
    simulation, never its numbers.

    Parameters
    ----------
    model : Model
    params : ndarray of shape (n_params,)
        The global parameters w_t every client starts from.
    X : ndarray of shape (K, n_samples, n_features)
    y : ndarray of shape (K, n_samples)
    cids : sequence of K ints
    config : dict
        "local_epochs", "batch_size" (None or inf: full batch), "lr" and "seed"; optionally
        "mu" (FedProx) and "control" (SCAFFOLD's c, shape (n_params,)).
    step : LocalStep, optional
        The correction rule; the default reads "mu" and "control".
    controls : ndarray of shape (K, n_params), optional
        The clients' control variates c_i, when ``config`` holds "control".

    Returns
    -------
    ndarray of shape (K, n_params)
    """
    n_clients, n_samples = y.shape
    rngs = [np.random.default_rng([config["seed"], cid]) for cid in cids]
    batch_size = full_batch_if_none(config["batch_size"], n_samples)
    lr, rows = config["lr"], np.arange(n_clients)[:, None]
    start = np.asarray(params, dtype=np.float64)
    stacked = np.tile(start, (n_clients, 1))
    terms = (step or LocalStep()).corrections(start, config, controls)
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging client: the server refuses its update
        for _ in range(config["local_epochs"]):
            order = np.stack([rng.permutation(n_samples) for rng in rngs])
            for first in range(0, n_samples, batch_size):
                batch = order[:, first:first + batch_size]
                grad = model.grad_stacked(stacked, X[rows, batch], y[rows, batch])
                for term in terms:
                    grad = grad + term(stacked)
                stacked -= lr * grad
    return stacked
