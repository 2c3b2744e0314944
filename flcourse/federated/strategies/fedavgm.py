"""FedAvgM (Hsu et al. 2019): FedAvg with momentum on the server. See notebook 06.

The average change of the clients is a pseudo-gradient, and the server takes a momentum step
with it:

    delta = w_t - sum_k (n_k / n) w_k,    v <- beta v + delta,    w <- w_t - server_lr * v.

The momentum v is the strategy's state, saved in checkpoints. With beta = 0 and
server_lr = 1 the step is FedAvg's (up to rounding).
"""
from __future__ import annotations

import numpy as np

from ..._validation import Interval
from ..aggregators import weighted_average
from .fedavg import FedAvg


class FedAvgM(FedAvg):
    """FedAvg with server momentum.

    Parameters
    ----------
    server_lr : float > 0, default=1.0
    server_momentum : float in [0, 1), default=0.9
        beta.
    fraction_fit, local_epochs, batch_size, lr, stragglers
        As for :class:`FedAvg`.
    """

    parameter_constraints = {**FedAvg.parameter_constraints, "server_lr": Interval(float, 0, None),
                             "server_momentum": Interval(float, 0, 1, closed="left")}

    def __init__(self, *, server_lr: float = 1.0, server_momentum: float = 0.9,
                 fraction_fit: float = 1.0, local_epochs: int = 1, batch_size=None,
                 lr: float = 0.1, stragglers: float = 0.0):
        super().__init__(fraction_fit=fraction_fit, local_epochs=local_epochs,
                         batch_size=batch_size, lr=lr, stragglers=stragglers)
        self.server_lr = server_lr
        self.server_momentum = server_momentum

    def initialize(self, params):
        self.state_ = {"momentum": np.zeros_like(params, dtype=np.float64)}

    def aggregate_fit(self, server_round, params, results, failures):
        """A momentum step along the clients' average change."""
        average = weighted_average([u.params for u in results], [u.n_examples for u in results])
        momentum = self.server_momentum * self.state_["momentum"] + (params - average)
        self.state_["momentum"] = momentum
        return params - self.server_lr * momentum, {"momentum_norm": float(np.linalg.norm(momentum))}
