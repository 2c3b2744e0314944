"""SCAFFOLD (Karimireddy et al., ICML 2020), option II: control variates against client drift.

The server keeps a control variate c and each client its own c_i (client state). A client
corrects every local step by the difference, so that it follows the global direction:

    y <- y - lr (g(y) - c_i + c)                       K local steps (batches x epochs)
    c_i+ = c_i - c + (x - y) / (K lr)                  option II; the client keeps c_i+
    x <- x + server_lr * mean_i (y_i - x)              over the clients S that answered
    c <- c + (|S| / N) * mean_i (c_i+ - c_i)           N: all clients

Clients send their change y_i - x and Δc_i = c_i+ - c_i (an extra array), so a round moves
twice FedAvg's bytes each way. See notebook 06.
"""
from __future__ import annotations

import numpy as np

from ..._validation import Interval
from ..client import CONTROL
from .base import Strategy, local_training_config, sample_clients
from .fedavg import FedAvg


class Scaffold(Strategy):
    """SCAFFOLD with option II's control variates.

    Parameters
    ----------
    fraction_fit : float in (0, 1], default=1.0
    local_epochs : int >= 1, default=1
    batch_size : int >= 1, or None / inf for full batches, default=None
    lr : float > 0, default=0.1
        The local learning rate eta_l.
    server_lr : float > 0, default=1.0
        The global learning rate eta_g.
    """

    required_extras = ("control_delta",)  # the grid refuses an update without it
    parameter_constraints = {**{key: FedAvg.parameter_constraints[key]
                                for key in ("fraction_fit", "local_epochs", "batch_size", "lr")},
                             "server_lr": Interval(float, 0, None)}

    def __init__(self, *, fraction_fit: float = 1.0, local_epochs: int = 1, batch_size=None,
                 lr: float = 0.1, server_lr: float = 1.0):
        self.fraction_fit = fraction_fit
        self.local_epochs = local_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.server_lr = server_lr

    def initialize(self, params):
        self.state_ = {CONTROL: np.zeros_like(params, dtype=np.float64)}

    def configure_fit(self, server_round, params, cids, rng) -> dict:
        """{cid: config} with the server's c; clients answer with their change and Δc_i."""
        self.n_clients_ = len(cids)
        config = {**local_training_config(self, server_round, rng), CONTROL: self.state_[CONTROL],
                  "update": "delta"}
        return {cids[k]: config for k in sample_clients(len(cids), self.fraction_fit, rng)}

    def aggregate_fit(self, server_round, params, results, failures):
        """x + server_lr * mean change; c + (|S| / N) * mean Δc."""
        deltas = np.mean([u.params for u in results], axis=0)
        control_deltas = np.mean([u.extras["control_delta"] for u in results], axis=0)
        self.state_[CONTROL] = self.state_[CONTROL] + len(results) / self.n_clients_ * control_deltas
        return params + self.server_lr * deltas, {}
