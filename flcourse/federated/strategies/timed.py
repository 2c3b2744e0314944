"""FedAvg on a simulated clock: wait for everyone, stop at a deadline, or over-select.

Each round the server picks K = max(1, round(C N)) clients among those present, works out
when each update would arrive (:class:`~flcourse.federated.simtime.SimulatedSystems`) and
settles the round (:func:`~flcourse.federated.simtime.settle_round`):

- synchronous (``deadline=None``): wait for every selected client, up to ``timeout``;
- a deadline: keep the updates that arrive by it, drop the late ones;
- over-selection (``over_selection`` = 1.3, Bonawitz et al. 2019): select ceil(1.3 K), keep the
  first K to arrive.

Only the clients kept train (the simulation knows who would be late; the numbers are those of
training everyone and discarding the rest). The clock is in the strategy's state, so it is
checkpointed, and every round's ``strategy_metrics`` records ``simulated_seconds``.
:class:`TimedFedProx` lets each client do the epochs that fit before the deadline (FedProx's
partial work), instead of dropping it. See notebook 07.
"""
from __future__ import annotations

import math

import numpy as np

from ..._validation import Interval
from ..aggregators import weighted_average
from ..simtime import SimulatedSystems, settle_round
from .base import local_training_config
from .fedavg import FedAvg

_TIMED_CONSTRAINTS = {
    **{key: FedAvg.parameter_constraints[key] for key in ("fraction_fit", "local_epochs", "batch_size", "lr")},
    "deadline": Interval(float, 0, None, none_ok=True),
    "over_selection": Interval(float, 1, 10, closed="both"),
    "timeout": Interval(float, 0, None),
}


class TimedFedAvg(FedAvg):
    """FedAvg whose rounds take simulated time: synchronous, with a deadline, or over-selecting.

    Parameters
    ----------
    systems : SimulatedSystems, optional
        The clients' speeds, links and availability (default: ``SimulatedSystems()``).
    deadline : float > 0 or None, default=None
        Simulated seconds a round waits for updates; None waits for every selected client.
    over_selection : float in [1, 10], default=1.0
        Select ceil(over_selection K) clients and keep the first K updates (1: no over-selection).
    timeout : float > 0, default=600.0
        The longest a round waits for a client that has dropped out.
    fraction_fit, local_epochs, batch_size, lr
        As for :class:`FedAvg`; C N is K, the number of updates a round wants.
    """

    parameter_constraints = _TIMED_CONSTRAINTS
    cli_exclude = ("systems",)

    def __init__(self, *, systems: SimulatedSystems | None = None, deadline: float | None = None,
                 over_selection: float = 1.0, timeout: float = 600.0, fraction_fit: float = 0.1,
                 local_epochs: int = 1, batch_size=None, lr: float = 0.1):
        super().__init__(fraction_fit=fraction_fit, local_epochs=local_epochs, batch_size=batch_size, lr=lr)
        self.systems = systems
        self.deadline, self.over_selection, self.timeout = deadline, over_selection, timeout

    def validate(self) -> None:
        super().validate()
        if self.systems is not None and not isinstance(self.systems, SimulatedSystems):
            raise TypeError(f"The 'systems' parameter of {type(self).__name__} must be a SimulatedSystems "
                            f"or None. Got {type(self.systems).__name__} instead.")

    @property
    def systems_(self) -> SimulatedSystems:
        """The systems model in use: ``systems``, or a default one (``systems`` stays None, so the
        strategy's identity does not change by running)."""
        if self.systems is not None:
            return self.systems
        if getattr(self, "_default_systems", None) is None:
            self._default_systems = SimulatedSystems()
        return self._default_systems

    def run_round(self, server_round, params, cids, rng, grid):
        """Select among the present clients, settle the round on the clock, average the kept."""
        clock = self.state_.get("clock", 0.0)
        config = local_training_config(self, server_round, rng)
        present = self.systems_.present(cids, server_round, clock)
        n_wanted = max(1, int(round(self.fraction_fit * len(cids))))
        n_select = min(len(present), math.ceil(self.over_selection * n_wanted - 1e-9))
        selected = [present[k] for k in np.sort(rng.choice(len(present), size=n_select, replace=False))]
        instructions, duration = self.settle(server_round, selected, config, n_wanted, grid, params.nbytes)
        results, failures = grid.fit(params, instructions)
        new = weighted_average([u.params for u in results], [u.n_examples for u in results]) \
            if results else params
        self.state_["clock"] = clock + duration
        return new, {"simulated_seconds": clock + duration, "round_seconds": duration,
                     "n_present": len(present), "n_selected": len(selected), "n_kept": len(results)}

    def settle(self, server_round, selected, config, n_wanted, grid, n_bytes):
        """({cid: config} of the clients kept, the round's duration)."""
        sizes = client_sizes(grid, selected, type(self).__name__)
        arrivals = self.systems_.arrival_times(selected, sizes, config["local_epochs"], n_bytes, server_round)
        kept, duration = settle_round(arrivals, deadline=self.deadline, timeout=self.timeout,
                                      n_wanted=n_wanted if self.over_selection > 1 else None)
        if not selected:
            duration = self.timeout if self.deadline is None else min(self.deadline, self.timeout)
        return {selected[k]: config for k in kept}, duration


class TimedFedProx(TimedFedAvg):
    """FedProx on the clock: each selected client runs the epochs that fit before the deadline.

    Client k runs e_k = min(E, floor((deadline - link_k) / epoch_k)) epochs with the proximal
    term mu; a client that cannot finish one epoch in time is dropped.

    Parameters
    ----------
    mu : float >= 0, default=0.0
    deadline : float > 0, default=60.0
    systems, over_selection, timeout, fraction_fit, local_epochs, batch_size, lr
        As for :class:`TimedFedAvg`.
    """

    parameter_constraints = {**_TIMED_CONSTRAINTS, "mu": Interval(float, 0, None, closed="left"),
                             "deadline": Interval(float, 0, None)}

    def __init__(self, *, mu: float = 0.0, deadline: float = 60.0, systems: SimulatedSystems | None = None,
                 over_selection: float = 1.0, timeout: float = 600.0, fraction_fit: float = 0.1,
                 local_epochs: int = 1, batch_size=None, lr: float = 0.1):
        super().__init__(systems=systems, deadline=deadline, over_selection=over_selection, timeout=timeout,
                         fraction_fit=fraction_fit, local_epochs=local_epochs, batch_size=batch_size, lr=lr)
        self.mu = mu

    def settle(self, server_round, selected, config, n_wanted, grid, n_bytes):
        config = {**config, "mu": self.mu}
        sizes = client_sizes(grid, selected, type(self).__name__)
        link = self.systems_.link_seconds(selected, n_bytes)
        per_epoch = self.systems_.epoch_seconds(selected, sizes)
        fits = np.floor((min(self.deadline, self.timeout) - link) / per_epoch)
        epochs = np.clip(fits, 1, self.local_epochs).astype(int)
        arrivals = self.systems_.arrival_times(selected, sizes, epochs, n_bytes, server_round)
        kept, duration = settle_round(arrivals, deadline=self.deadline, timeout=self.timeout,
                                      n_wanted=n_wanted if self.over_selection > 1 else None)
        instructions = {selected[k]: {**config, "local_epochs": int(epochs[k])} for k in kept}
        return instructions, duration if selected else min(self.deadline, self.timeout)


def client_sizes(grid, cids, owner: str) -> list:
    """The declared sample counts of ``cids``; a clear error for a client without one."""
    sizes = [grid.runner.size(cid) for cid in cids]
    if None in sizes:
        cid = cids[sizes.index(None)]
        raise ValueError(f"{owner} needs every client's number of samples to simulate its time. "
                         f"Got client {cid} with no 'n_samples' instead.")
    return sizes
