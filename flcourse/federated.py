"""Federated learning: clients that own their data, strategies that aggregate their work.

The client contract is Flower's ``NumPyClient`` shape, so a client written here runs under
Flower unchanged (notebook 11):

    fit(params, config)      -> (params, n_examples, metrics)
    evaluate(params, config) -> (loss, n_examples, metrics)

A strategy chooses who takes part in a round and with which settings (``configure_fit``) and
turns the clients' results into new global parameters (``aggregate_fit``, a pure function of
its inputs). The round loop lives in :mod:`flcourse.server`. See notebook 05.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ._validation import check_params, check_rng, check_scalar
from .aggregate import weighted_average
from .models import Model
from .data.partition import check_index_partition


class NumpyClient:
    """A client that owns (X, y) and trains ``model`` on it with local minibatch SGD.

    ``fit`` runs ``config["local_epochs"]`` epochs of SGD with ``config["batch_size"]``
    (None or inf: full batch) and ``config["lr"]`` from the given parameters. The minibatch
    order comes from ``(config["seed"], cid)``, so a client does the same work wherever it runs.

    Parameters
    ----------
    model : Model
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    cid : int
        The client's id, used in error messages and in its random stream.
    """

    def __init__(self, model: Model, X, y, *, cid: int = 0):
        if not isinstance(model, Model):
            raise TypeError(f"The 'model' parameter of NumpyClient must be a flcourse Model. "
                            f"Got {type(model).__name__} instead.")
        _, self.X, self.y = model.check_inputs(np.zeros(model.n_params), X, y, "NumpyClient")
        self.model = model
        self.cid = check_scalar(cid, "cid", "NumpyClient", int, low=0, closed="left")

    @property
    def n_samples(self) -> int:
        """How many samples the client holds: the most its ``fit`` may report."""
        return len(self.y)

    def fit(self, params, config: dict):
        """Train locally from ``params``; return (new params, number of examples, metrics)."""
        params = check_params(params, self.model.n_params, "NumpyClient.fit")
        check_fit_config(config, "NumpyClient.fit")
        params = local_sgd(self.model, params, self.X[None], self.y[None], [self.cid], config)[0]
        return params, len(self.y), {}

    def evaluate(self, params, config: dict):
        """Return (loss, number of examples, {"accuracy": ...}) of ``params`` on the local data."""
        params = check_params(params, self.model.n_params, "NumpyClient.evaluate")
        loss = self.model._loss_grad(params, self.X, self.y, False)[0]
        return float(loss), len(self.y), {"accuracy": self.model.score(params, self.X, self.y)}

    def __repr__(self) -> str:
        return f"NumpyClient(cid={self.cid}, n_samples={len(self.y)}, model={self.model!r})"


def check_fit_config(config, owner: str) -> dict:
    """Raise a clear error unless ``config`` holds valid local-training instructions."""
    if not isinstance(config, dict):
        raise TypeError(f"The 'config' parameter of {owner} must be a dict. Got {type(config).__name__} instead.")
    missing = [key for key in ("local_epochs", "batch_size", "lr", "seed") if key not in config]
    if missing:
        raise ValueError(f"The 'config' parameter of {owner} must hold 'local_epochs', 'batch_size', "
                         f"'lr' and 'seed'. Got no {', '.join(map(repr, missing))} instead.")
    check_scalar(config["local_epochs"], 'config["local_epochs"]', owner, int, low=1, closed="left")
    check_scalar(config["lr"], 'config["lr"]', owner, low=0)
    check_scalar(config["seed"], 'config["seed"]', owner, int, low=0, closed="left")
    if config["batch_size"] is not None and config["batch_size"] != math.inf:
        check_scalar(config["batch_size"], 'config["batch_size"]', owner, int, low=1, closed="left")
    return config


def local_sgd(model: Model, params, X, y, cids, config: dict) -> np.ndarray:
    """The local training of :meth:`NumpyClient.fit`, for K clients with equally many samples
    at once: each step is one vectorised gradient of K models on K minibatches.

    Client k's minibatch order comes from ``(config["seed"], cids[k])``, and its row of the
    result is bit for bit what it computes alone (a stack of one), so grouping clients changes
    the speed of a simulation, never its numbers.

    Parameters
    ----------
    model : Model
    params : ndarray of shape (n_params,)
        The global parameters every client starts from.
    X : ndarray of shape (K, n_samples, n_features)
    y : ndarray of shape (K, n_samples)
    cids : sequence of K ints
    config : dict with "local_epochs", "batch_size" (None or inf: full batch), "lr" and "seed"

    Returns
    -------
    ndarray of shape (K, n_params)
    """
    n_clients, n_samples = y.shape
    rngs = [np.random.default_rng([config["seed"], cid]) for cid in cids]
    batch_size = full_batch_if_none(config["batch_size"], n_samples)
    lr, rows = config["lr"], np.arange(n_clients)[:, None]
    stacked = np.tile(np.asarray(params, dtype=np.float64), (n_clients, 1))
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging client: the server refuses its update
        for _ in range(config["local_epochs"]):
            order = np.stack([rng.permutation(n_samples) for rng in rngs])
            for start in range(0, n_samples, batch_size):
                batch = order[:, start:start + batch_size]
                stacked -= lr * model._grad_stacked(stacked, X[rows, batch], y[rows, batch])
    return stacked


def make_clients(model: Model, X, y, partition) -> list[NumpyClient]:
    """One :class:`NumpyClient` per part of ``partition``, with ids 0, 1, ...

    The parts must be disjoint arrays of integer row indices of ``X``; they need not cover it.
    """
    if not isinstance(model, Model):
        raise TypeError(f"The 'model' parameter of make_clients must be a flcourse Model. "
                        f"Got {type(model).__name__} instead.")
    _, X, y = model.check_inputs(np.zeros(model.n_params), X, y, "make_clients")
    parts = check_index_partition(partition, len(y), "make_clients", cover=False)
    empty = [k for k, part in enumerate(parts) if len(part) == 0]
    if empty:
        raise ValueError(f"The 'partition' parameter of make_clients must give every client at least "
                         f"one sample. Got an empty part {empty[0]} instead.")
    return [NumpyClient(model, X[part], y[part], cid=cid) for cid, part in enumerate(parts)]


def full_batch_if_none(batch_size, n_samples: int) -> int:
    """Return ``batch_size`` as an int, reading None or inf as "the whole local dataset"."""
    if batch_size is None or batch_size == math.inf:
        return n_samples
    return int(batch_size)


def sample_clients(n_clients: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Pick max(1, round(fraction * n_clients)) distinct clients at random, in increasing order.

    Python's round() sends halves to the even neighbour: C = 0.25 of 10 clients picks 2.
    """
    check_scalar(n_clients, "n_clients", "sample_clients", int, low=1, closed="left")
    check_scalar(fraction, "fraction", "sample_clients", low=0, high=1, closed="right")
    rng = check_rng(rng, "sample_clients", name="rng")
    n_selected = max(1, int(round(fraction * n_clients)))
    return np.sort(rng.choice(n_clients, size=n_selected, replace=False))


class FedAvg:
    """Federated averaging (McMahan et al., AISTATS 2017).

    Each round a fraction C of the clients runs E local epochs of minibatch SGD with batch
    size B and learning rate lr from the global parameters; the server averages the returned
    parameters weighted by the clients' numbers of examples n_k.

    Parameters
    ----------
    fraction_fit : float in (0, 1], default=1.0
        C, the fraction of clients selected each round (at least one).
    local_epochs : int >= 1, default=1
        E.
    batch_size : int >= 1, or None / inf for full batches, default=None
        B.
    lr : float > 0, default=0.1
    """

    def __init__(self, *, fraction_fit: float = 1.0, local_epochs: int = 1, batch_size=None,
                 lr: float = 0.1):
        self.fraction_fit = fraction_fit
        self.local_epochs = local_epochs
        self.batch_size = batch_size
        self.lr = lr

    def validate(self) -> None:
        """Raise a clear error for a hyper-parameter out of range."""
        owner = type(self).__name__
        check_scalar(self.fraction_fit, "fraction_fit", owner, low=0, high=1, closed="right")
        check_scalar(self.local_epochs, "local_epochs", owner, int, low=1, closed="left")
        check_scalar(self.lr, "lr", owner, low=0)
        if self.batch_size is not None and self.batch_size != math.inf:
            check_scalar(self.batch_size, "batch_size", owner, int, low=1, closed="left")

    def configure_fit(self, server_round: int, n_clients: int, rng: np.random.Generator):
        """Return (ids of the selected clients, the config every selected client receives)."""
        config = {"server_round": server_round, "local_epochs": self.local_epochs,
                  "batch_size": self.batch_size, "lr": self.lr,
                  "seed": int(rng.integers(2**63))}
        return sample_clients(n_clients, self.fraction_fit, rng), config

    def aggregate_fit(self, params, results) -> np.ndarray:
        """New global parameters: the n_k-weighted average of the clients' parameters."""
        return weighted_average([p for p, _ in results], [n for _, n in results])

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(fraction_fit={self.fraction_fit}, local_epochs="
                f"{self.local_epochs}, batch_size={self.batch_size}, lr={self.lr})")


class FedSGD(FedAvg):
    """Federated SGD: each selected client takes one full-batch gradient step (E = 1, B = inf).

    Averaging the clients' parameters after one step from the same point is averaging their
    gradients: theta - lr * sum_k (n_k / n) g_k. With every client selected this is exactly
    centralised gradient descent (notebook 03).
    """

    def __init__(self, *, fraction_fit: float = 1.0, lr: float = 0.1):
        super().__init__(fraction_fit=fraction_fit, local_epochs=1, batch_size=None, lr=lr)

    def __repr__(self) -> str:
        return f"FedSGD(fraction_fit={self.fraction_fit}, lr={self.lr})"


class InvalidUpdateError(ValueError):
    """A client's update cannot be aggregated; the message names the client and the problem."""


DEFAULT_MAX_EXAMPLES = 10**9  # the bound on n_examples for a client that declares no size


def check_update(cid: int, result, n_params: int, *, max_examples: int = DEFAULT_MAX_EXAMPLES,
                 param_bound: float = math.inf):
    """Return ``(params, n_examples)`` from a client's ``fit`` result, or raise InvalidUpdateError.

    ``params`` must be a plain float ndarray (no subclass: its arithmetic could run anything)
    of shape (n_params,), finite and at most ``param_bound`` in absolute value; ``n_examples``
    an int in [1, max_examples] (a client's declared size), so that no client can take over
    the average by claiming more data than it holds. ``params`` is returned as a new float64
    array the client cannot change afterwards.
    """
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise InvalidUpdateError(f"update from client {cid} must be a tuple (params, n_examples, "
                                 f"metrics); got {type(result).__name__}")
    params, n_examples, metrics = result
    if type(params) is not np.ndarray or params.dtype.kind != "f":
        kind = type(params).__name__ + (f" of dtype {params.dtype}" if isinstance(params, np.ndarray) else "")
        raise InvalidUpdateError(f"update from client {cid} must hold a plain float ndarray of "
                                 f"parameters; got {kind}")
    if params.shape != (n_params,):
        raise InvalidUpdateError(f"update from client {cid} has shape {params.shape}, expected ({n_params},)")
    params = np.array(params, dtype=np.float64)
    if not np.all(np.isfinite(params)):
        kind = "NaN" if np.isnan(params).any() else "Inf"
        raise InvalidUpdateError(f"update from client {cid} holds {kind} in "
                                 f"{int((~np.isfinite(params)).sum())} of {n_params} parameters")
    if np.abs(params).max(initial=0.0) > param_bound:
        raise InvalidUpdateError(f"update from client {cid} holds a parameter of magnitude "
                                 f"{np.abs(params).max():.3g}, over param_bound={param_bound:g}")
    if isinstance(n_examples, bool) or not isinstance(n_examples, numbers.Integral) \
            or not 1 <= n_examples <= max_examples:
        raise InvalidUpdateError(f"update from client {cid} must report n_examples as an int in "
                                 f"[1, {max_examples}]; got {_short(n_examples)}")
    if not isinstance(metrics, dict):
        raise InvalidUpdateError(f"update from client {cid} must report metrics as a dict; "
                                 f"got {type(metrics).__name__}")
    return params, int(n_examples)


def _short(value) -> str:
    """``repr(value)``, shortened: a client's 10**300 need not fill the log."""
    if isinstance(value, numbers.Integral) and abs(value) >= 10**12:
        return f"an int of magnitude 2**{int(value).bit_length() - 1} or more"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
