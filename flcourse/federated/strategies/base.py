"""What every strategy shares: its life cycle, its identity, its state and its checks.

A strategy's life cycle is Flower's:

    initialize(params)                                   reset the state for a new run
    configure_fit(server_round, params, cids, rng)    -> {cid: config} for the selected clients
    aggregate_fit(server_round, params, results, failures) -> (new params, metrics)

``results`` are the checked :class:`~flcourse.federated.messages.Update` s of the clients that
answered, ``failures`` the ``(cid, reason)`` pairs of those dropped. Unlike Flower's, our
``aggregate_fit`` is also given the parameters of the round, so a strategy keeps no copy of
them that a checkpoint could miss. Any state a strategy keeps between rounds (FedAvgM's
momentum, SCAFFOLD's c) is in ``state_``, returned by :meth:`get_state`, saved in checkpoints
and restored by :meth:`set_state`. A strategy is identified by its constructor parameters
(:meth:`get_params`, scikit-learn's), declared with their constraints in
``parameter_constraints``. A strategy that needs several request/response stages in a round
(secure aggregation) defines ``run_round`` instead (see :mod:`flcourse.federated.server`).
"""
from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..._validation import check_constraints, check_rng, check_scalar
from ..identity import constructor_params
from ..messages import Update


def sample_clients(n_clients: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Pick max(1, round(fraction * n_clients)) distinct positions at random, in increasing order.

    Python's round() sends halves to the even neighbour: C = 0.25 of 10 clients picks 2.
    """
    check_scalar(n_clients, "n_clients", "sample_clients", int, low=1, closed="left")
    check_scalar(fraction, "fraction", "sample_clients", low=0, high=1, closed="right")
    rng = check_rng(rng, "sample_clients", name="rng")
    n_selected = max(1, int(round(fraction * n_clients)))
    return np.sort(rng.choice(n_clients, size=n_selected, replace=False))


def local_training_config(strategy, server_round: int, rng: np.random.Generator) -> dict:
    """The local-training instructions of a round, from ``strategy``'s ``local_epochs``,
    ``batch_size`` and ``lr``; the round's seed is drawn from ``rng`` (first, before the sample)."""
    return {"server_round": server_round, "local_epochs": strategy.local_epochs,
            "batch_size": strategy.batch_size, "lr": strategy.lr, "seed": int(rng.integers(2**63))}


class Strategy:
    """Base class: identity, state and checks; subclasses implement the two round steps."""

    parameter_constraints: dict = {}

    def get_params(self) -> dict:
        """The constructor parameters, as JSON values: what identifies the strategy."""
        return constructor_params(self)

    def validate(self) -> None:
        """Raise a clear error for a constructor parameter outside its constraint."""
        check_constraints(self, self.parameter_constraints)

    def initialize(self, params: np.ndarray) -> None:
        """Start a new run from ``params``: reset the state."""
        self.state_ = {}

    def get_state(self) -> dict:
        """A copy of the state the strategy keeps between rounds (arrays and JSON values)."""
        return {key: np.array(value) if isinstance(value, np.ndarray) else value
                for key, value in getattr(self, "state_", {}).items()}

    def set_state(self, state: dict) -> None:
        """Restore a state saved by :meth:`get_state` (resuming from a checkpoint)."""
        self.state_ = {key: np.array(value) if isinstance(value, np.ndarray) else value
                       for key, value in state.items()}

    def configure_fit(self, server_round: int, params: np.ndarray, cids, rng: np.random.Generator) -> dict:
        raise NotImplementedError

    def aggregate_fit(self, server_round: int, params: np.ndarray, results: list[Update],
                      failures: list) -> tuple[npt.NDArray[np.float64], dict]:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.get_params().items())
        return f"{type(self).__name__}({args})"
