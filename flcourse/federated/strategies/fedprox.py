"""FedProx (Li et al., MLSys 2020): FedAvg with a proximal term, and partial work from stragglers.

Each client minimises F_k(w) + mu/2 ||w - w_t||^2 locally, so its SGD step is

    w <- w - lr * (grad F_k(w) + mu * (w - w_t)),

which keeps it near the global model on skewed data. Stragglers do partial work: a random
number of epochs in 1 .. E-1, drawn for each, as in the paper's code, where FedAvg drops
them. With mu = 0 and no stragglers, FedProx is FedAvg, bit for bit. See notebook 06.
"""
from __future__ import annotations

from ..._validation import Interval
from .base import local_training_config, sample_clients
from .fedavg import FedAvg, split_stragglers


class FedProx(FedAvg):
    """FedAvg with the proximal term mu (w - w_t) and the stragglers' partial work.

    Parameters
    ----------
    mu : float >= 0, default=1.0
        The proximal term's weight.
    fraction_fit, local_epochs, batch_size, lr, stragglers
        As for :class:`FedAvg`; ``local_epochs`` must be at least 2 when there are stragglers.
    """

    parameter_constraints = {**FedAvg.parameter_constraints, "mu": Interval(float, 0, None, closed="left")}

    def __init__(self, *, mu: float = 1.0, fraction_fit: float = 1.0, local_epochs: int = 1,
                 batch_size=None, lr: float = 0.1, stragglers: float = 0.0):
        super().__init__(fraction_fit=fraction_fit, local_epochs=local_epochs,
                         batch_size=batch_size, lr=lr, stragglers=stragglers)
        self.mu = mu

    def validate(self) -> None:
        super().validate()
        if self.stragglers and self.local_epochs < 2:
            raise ValueError(f"The 'local_epochs' parameter of FedProx must be at least 2 when there are "
                             f"stragglers (they run 1 .. local_epochs - 1 epochs). Got {self.local_epochs} instead.")

    def configure_fit(self, server_round, params, cids, rng) -> dict:
        """{cid: config} for every selected client; stragglers get fewer epochs."""
        config = {**local_training_config(self, server_round, rng), "mu": self.mu}
        selected = [cids[k] for k in sample_clients(len(cids), self.fraction_fit, rng)]
        on_time, stragglers = split_stragglers(selected, self.stragglers, rng)
        instructions = {cid: config for cid in on_time}
        for cid in stragglers:
            instructions[cid] = {**config, "local_epochs": int(rng.integers(1, self.local_epochs))}
        return dict(sorted(instructions.items()))
