"""FedBuff (Nguyen et al., AISTATS 2022): buffered asynchronous aggregation on a simulated clock.

Nobody waits for the slowest client. ``concurrency`` clients train at once; each that finishes
puts its update in a buffer and is replaced at once by a new client, which starts from the
model of that moment. Every ``buffer_size`` = M arrivals the server steps

    x <- x + server_lr * (1/M) * sum_i s(tau_i) * delta_i,    s(tau) = 1 / sqrt(1 + tau),

where tau_i, the staleness, is how many server steps happened since client i received its
model. One server step is one round of the server loop, and its ``strategy_metrics`` record the
simulated time. A client that drops out is noticed after ``timeout`` and replaced; a round in
which ``concurrency`` clients time out ends with the updates it has (perhaps none). The
clients in flight, their start versions and their (already computed) updates are the
strategy's state, so a run resumes exactly. See notebook 07.
"""
from __future__ import annotations

import copy

import numpy as np

from ..._validation import Interval
from ..simtime import SimulatedSystems
from .base import local_training_config
from .timed import TimedFedAvg, client_sizes

# A flight entry: [cid, start version, finish time, arrives (1) or not (0), trained (1) or not (0)]
CID, VERSION, FINISH, ARRIVES, TRAINED = range(5)


class FedBuff(TimedFedAvg):
    """Buffered asynchronous FedAvg with staleness-weighted updates.

    Parameters
    ----------
    concurrency : int >= 1, default=20
        How many clients train at the same time.
    buffer_size : int >= 1, default=10
        M, the arrivals per server step.
    server_lr : float > 0, default=1.0
    systems, timeout, local_epochs, batch_size, lr
        As for :class:`TimedFedAvg`.
    """

    parameter_constraints = {
        **{key: TimedFedAvg.parameter_constraints[key] for key in ("local_epochs", "batch_size", "lr", "timeout")},
        "concurrency": Interval(int, 1, None, closed="left"),
        "buffer_size": Interval(int, 1, None, closed="left"),
        "server_lr": Interval(float, 0, None),
    }

    def __init__(self, *, concurrency: int = 20, buffer_size: int = 10, server_lr: float = 1.0,
                 systems: SimulatedSystems | None = None, timeout: float = 600.0, local_epochs: int = 1,
                 batch_size=None, lr: float = 0.1):
        super().__init__(systems=systems, timeout=timeout, local_epochs=local_epochs, batch_size=batch_size,
                         lr=lr)
        self.concurrency, self.buffer_size, self.server_lr = concurrency, buffer_size, server_lr

    def initialize(self, params) -> None:
        self.state_ = {"clock": 0.0, "version": 0, "draws": 0, "flight": [], "updates": {}}

    def get_state(self) -> dict:
        return copy.deepcopy(self.state_)

    def set_state(self, state: dict) -> None:
        self.state_ = {"updates": {}, **copy.deepcopy(state)}
        self.state_["updates"] = {cid: np.array(u) for cid, u in self.state_["updates"].items()}

    def run_round(self, server_round, params, cids, rng, grid):
        """Collect M arrivals on the clock, train the clients that started from ``params``, step."""
        state = self.state_
        if not state["flight"]:
            self._dispatch(cids, self.concurrency, rng, grid, [])
        buffer, n_timeouts = [], 0
        while len(buffer) < self.buffer_size and state["flight"] and n_timeouts < self.concurrency:
            entry = self._pop_earliest()
            state["clock"] = entry[FINISH]
            if entry[ARRIVES]:
                buffer.append(entry)
            else:
                n_timeouts += 1
            if len(buffer) < self.buffer_size:
                self._dispatch(cids, 1, rng, grid, buffer)
        self._train_waiting(server_round, params, buffer, rng, grid)
        arrived = [e for e in buffer if e[ARRIVES]]
        new, staleness = params, [state["version"] - e[VERSION] for e in arrived]
        if arrived:
            deltas = [state["updates"].pop(str(e[CID])) for e in arrived]
            step = sum(d / np.sqrt(1 + tau) for tau, d in zip(staleness, deltas)) / self.buffer_size
            new = params + self.server_lr * step
            state["version"] += 1
        self._dispatch(cids, 1 if state["flight"] else self.concurrency, rng, grid, [])
        if not state["flight"]:  # nobody present: wait before trying again
            state["clock"] += self.timeout
        return new, {"simulated_seconds": state["clock"], "n_arrived": len(arrived), "n_timeouts": n_timeouts,
                     "mean_staleness": float(np.mean(staleness)) if staleness else 0.0}

    def _pop_earliest(self) -> list:
        """Remove and return the in-flight entry that finishes first (ties: lower id)."""
        flight = self.state_["flight"]
        k = min(range(len(flight)), key=lambda i: (flight[i][FINISH], flight[i][CID]))
        return flight.pop(k)

    def _dispatch(self, cids, n_new: int, rng, grid, buffer) -> None:
        """Start ``n_new`` present clients, neither in flight nor in ``buffer``, at the current time
        from the current version; their work is computed when trained (:meth:`_train_waiting`)."""
        state = self.state_
        busy = {e[CID] for e in state["flight"] + buffer}
        state["draws"] += 1
        free = [cid for cid in self.systems_.present(cids, state["draws"], state["clock"]) if cid not in busy]
        chosen = [free[k] for k in np.sort(rng.choice(len(free), size=min(n_new, len(free)), replace=False))]
        sizes = client_sizes(grid, chosen, type(self).__name__)
        arrivals = self.systems_.arrival_times(chosen, sizes, self.local_epochs, grid.n_params * 8,
                                               state["draws"])
        for cid, arrival in zip(chosen, arrivals):
            arrives = bool(np.isfinite(arrival) and arrival <= self.timeout)
            finish = state["clock"] + (float(arrival) if arrives else self.timeout)
            state["flight"].append([int(cid), state["version"], finish, int(arrives), 0])

    def _train_waiting(self, server_round, params, buffer, rng, grid) -> None:
        """Train, from ``params``, every client that started from this version and will arrive;
        one that fails is dropped (it will not arrive)."""
        waiting = [e for e in self.state_["flight"] + buffer if e[ARRIVES] and not e[TRAINED]]
        if not waiting:
            return
        config = {**local_training_config(self, server_round, rng), "update": "delta"}
        results, _ = grid.fit(params, {e[CID]: config for e in waiting})
        done = {u.cid: u.params for u in results}
        for e in waiting:
            e[TRAINED], e[ARRIVES] = 1, int(e[CID] in done)
        self.state_["updates"].update({str(cid): delta for cid, delta in done.items()})
