"""Federated clients: each owns its data and trains on it when the server asks.

The client contract is Flower's ``NumPyClient`` shape (adapted to Flower by
:mod:`flcourse.integrations.flower`, notebook 11):

    fit(params, config)      -> (params, n_examples, metrics)   a FitRes, with extras
    evaluate(params, config) -> (loss, n_examples, metrics)

A client may keep a ``state`` across rounds (a dict of arrays: SCAFFOLD's c_i, chapter 09's
error-feedback memory). The runner provides it, as Flower's ``Context.state`` is provided:
kept in this process or in the client's own, and saved in checkpoints.

:class:`NumpyClient` trains with :func:`~flcourse.federated.local.local_sgd` and can train
together with other clients (``fit_stacked``): the in-process runner groups clients by that
capability, not by their exact type. See notebooks 05 and 06.
"""
from __future__ import annotations

import numpy as np

from .._validation import check_params, check_scalar
from ..data import check_index_partition
from ..models import Model
from .local import LocalStep, local_sgd, n_local_steps
from .messages import FitRes

CONTROL = "control"  # the state key and config key of SCAFFOLD's control variates


class NumpyClient:
    """A client that owns (X, y) and trains ``model`` on it with local minibatch SGD.

    ``fit`` runs ``config["local_epochs"]`` epochs of SGD with ``config["batch_size"]``
    (None or inf: full batch) and ``config["lr"]`` from the given parameters, corrected by
    ``step`` (FedProx's ``config["mu"]``, SCAFFOLD's ``config["control"]``). The minibatch
    order comes from ``(config["seed"], cid)``, so a client does the same work wherever it runs.
    With ``config["update"] == "delta"`` it returns the change of its parameters.

    Parameters
    ----------
    model : Model
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    cid : int
        The client's id, used in error messages and in its random stream.
    step : LocalStep, optional

    Attributes
    ----------
    state : dict of str to ndarray
        What the client keeps across rounds; SCAFFOLD's c_i under "control".
    """

    def __init__(self, model: Model, X, y, *, cid: int = 0, step: LocalStep | None = None):
        if not isinstance(model, Model):
            raise TypeError(f"The 'model' parameter of NumpyClient must be a flcourse Model. "
                            f"Got {type(model).__name__} instead.")
        _, self.X, self.y = model.check_inputs(np.zeros(model.n_params), X, y, "NumpyClient")
        self.model = model
        self.cid = check_scalar(cid, "cid", "NumpyClient", int, low=0, closed="left")
        if step is not None and not isinstance(step, LocalStep):
            raise TypeError(f"The 'step' parameter of NumpyClient must be a LocalStep or None. "
                            f"Got {type(step).__name__} instead.")
        self.step = step
        self.state = {}

    @property
    def n_samples(self) -> int:
        """How many samples the client holds: the most its ``fit`` may report."""
        return len(self.y)

    def stack_key(self, config: dict):
        """Clients with equal keys can train in one stack (:meth:`fit_stacked`)."""
        settings = tuple(sorted((k, id(v) if isinstance(v, np.ndarray) else v) for k, v in config.items()))
        return (type(self).fit_stacked, id(self.model), len(self.y), type(self.step), settings)

    def fit(self, params, config: dict) -> FitRes:
        """Train locally from ``params``; return FitRes(new params or delta, n_examples, metrics)."""
        params = check_params(params, self.model.n_params, "NumpyClient.fit")
        check_fit_config(config, "NumpyClient.fit", self.model.n_params)
        return type(self).fit_stacked([self], params, config)[0]

    @classmethod
    def fit_stacked(cls, clients: list, params: np.ndarray, config: dict) -> list[FitRes]:
        """``fit`` for clients of equal :meth:`stack_key`, in one vectorised pass; element k
        is bit for bit what ``clients[k].fit(params, config)`` returns."""
        first = clients[0]
        controls = None
        if CONTROL in config:
            controls = np.stack([c.state.get(CONTROL, np.zeros_like(params)) for c in clients])
        stacked = local_sgd(first.model, params, np.stack([c.X for c in clients]),
                            np.stack([c.y for c in clients]), [c.cid for c in clients], config,
                            step=first.step, controls=controls)
        return [client.result(params, new, config, None if controls is None else controls[k])
                for k, (client, new) in enumerate(zip(clients, stacked))]

    def result(self, params, new, config, control) -> FitRes:
        """The reply for parameters ``new`` trained from ``params``; updates SCAFFOLD's c_i."""
        extras = {}
        if control is not None:  # option II: c_i+ = c_i - c + (x - y) / (K lr)
            steps = n_local_steps(len(self.y), config)
            updated = control - config[CONTROL] + (params - new) / (steps * config["lr"])
            extras["control_delta"] = updated - control
            self.state[CONTROL] = updated
        update = new - params if config.get("update") == "delta" else new
        return FitRes(update, len(self.y), {}, extras)

    def evaluate(self, params, config: dict):
        """Return (loss, number of examples, {"accuracy": ...}) of ``params`` on the local data."""
        params = check_params(params, self.model.n_params, "NumpyClient.evaluate")
        loss = self.model.loss_grad(params, self.X, self.y, False)[0]
        return float(loss), len(self.y), {"accuracy": self.model.score(params, self.X, self.y)}

    def __repr__(self) -> str:
        return f"NumpyClient(cid={self.cid}, n_samples={len(self.y)}, model={self.model!r})"


def check_fit_config(config, owner: str, n_params: int) -> dict:
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
    check_scalar(config.get("mu", 0.0), 'config["mu"]', owner, low=0, closed="left")
    if config["batch_size"] is not None and config["batch_size"] != np.inf:
        check_scalar(config["batch_size"], 'config["batch_size"]', owner, int, low=1, closed="left")
    if CONTROL in config:
        check_params(config[CONTROL], n_params, owner, name='config["control"]')
    return config


def make_clients(model: Model, X, y, partition, *, step: LocalStep | None = None) -> list[NumpyClient]:
    """One :class:`NumpyClient` per part of ``partition``, with ids 0, 1, ...

    The parts must be disjoint arrays of integer row indices of ``X``; they need not cover it.
    For a federation too large to hold as objects, see :class:`~flcourse.federated.OnDemand`.
    """
    X, y, parts = check_client_parts(model, X, y, partition, "make_clients")
    return [NumpyClient(model, X[part], y[part], cid=cid, step=step) for cid, part in enumerate(parts)]


def check_client_parts(model, X, y, partition, owner: str):
    """``(X, y, parts)`` checked: a Model, data it accepts, disjoint non-empty parts."""
    if not isinstance(model, Model):
        raise TypeError(f"The 'model' parameter of {owner} must be a flcourse Model. "
                        f"Got {type(model).__name__} instead.")
    _, X, y = model.check_inputs(np.zeros(model.n_params), X, y, owner)
    parts = check_index_partition(partition, len(y), owner, cover=False)
    empty = [k for k, part in enumerate(parts) if len(part) == 0]
    if empty:
        raise ValueError(f"The 'partition' parameter of {owner} must give every client at least "
                         f"one sample. Got an empty part {empty[0]} instead.")
    return X, y, parts
