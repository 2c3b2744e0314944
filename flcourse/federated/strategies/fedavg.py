"""FedAvg (McMahan et al., AISTATS 2017) and FedSGD, its one-step special case. See notebook 05."""
from __future__ import annotations

import numpy as np

from ..._validation import Interval
from ..aggregators import weighted_average
from .base import Strategy, local_training_config, sample_clients


class FedAvg(Strategy):
    """Federated averaging.

    Each round a fraction C of the clients runs E local epochs of minibatch SGD with batch
    size B and learning rate lr from the global parameters; the server averages the returned
    parameters weighted by the clients' numbers of examples n_k. With ``stragglers`` = s, a
    fraction s of the selected clients cannot finish E epochs in time, and FedAvg drops them
    before they start, as in the FedProx paper's experiments (Li et al. 2020).

    Parameters
    ----------
    fraction_fit : float in (0, 1], default=1.0
        C, the fraction of clients selected each round (at least one).
    local_epochs : int >= 1, default=1
        E.
    batch_size : int >= 1, or None / inf for full batches, default=None
        B.
    lr : float > 0, default=0.1
    stragglers : float in [0, 1), default=0.0
        The fraction of the selected clients that are stragglers.
    """

    parameter_constraints = {
        "fraction_fit": Interval(float, 0, 1, closed="right"),
        "local_epochs": Interval(int, 1, None, closed="left"),
        "batch_size": Interval(int, 1, None, closed="left", none_ok=True, inf_ok=True),
        "lr": Interval(float, 0, None),
        "stragglers": Interval(float, 0, 1, closed="left"),
    }

    def __init__(self, *, fraction_fit: float = 1.0, local_epochs: int = 1, batch_size=None,
                 lr: float = 0.1, stragglers: float = 0.0):
        self.fraction_fit = fraction_fit
        self.local_epochs = local_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.stragglers = stragglers

    def configure_fit(self, server_round, params, cids, rng) -> dict:
        """{cid: config} for the selected clients that will finish in time."""
        config = local_training_config(self, server_round, rng)
        selected = [cids[k] for k in sample_clients(len(cids), self.fraction_fit, rng)]
        on_time, _ = split_stragglers(selected, self.stragglers, rng)
        return {cid: config for cid in on_time}

    def aggregate_fit(self, server_round, params, results, failures):
        """New global parameters: the n_k-weighted average of the clients' parameters."""
        return weighted_average([u.params for u in results], [u.n_examples for u in results]), {}


def split_stragglers(selected: list, fraction: float, rng: np.random.Generator):
    """(clients on time, stragglers): round(m (1 - fraction)) of the m selected are on time,
    drawn at random, in the order given; no draw at all when ``fraction`` is 0."""
    if not fraction:
        return list(selected), []
    n_on_time = int(round(len(selected) * (1 - fraction)))
    chosen = set(rng.choice(len(selected), size=n_on_time, replace=False).tolist())
    return ([c for k, c in enumerate(selected) if k in chosen],
            [c for k, c in enumerate(selected) if k not in chosen])


class FedSGD(FedAvg):
    """Federated SGD: each selected client takes one full-batch gradient step (E = 1, B = inf).

    Averaging the clients' parameters after one step from the same point is averaging their
    gradients: theta - lr * sum_k (n_k / n) g_k. With every client selected this is exactly
    centralised gradient descent (notebook 03).
    """

    parameter_constraints = {key: FedAvg.parameter_constraints[key] for key in ("fraction_fit", "lr")}

    def __init__(self, *, fraction_fit: float = 1.0, lr: float = 0.1):
        super().__init__(fraction_fit=fraction_fit, local_epochs=1, batch_size=None, lr=lr)
