"""Simulated time: how fast each client computes and talks, when it is there, when it drops out.

Real federations wait for their slowest members. To study that without waiting, every client
gets a compute speed (samples per second), a link bandwidth (bytes per second) and an
availability, and a round's duration is computed, not slept:

    arrival_k = n_bytes / bandwidth_k  +  epochs * n_k / speed_k  +  n_bytes / bandwidth_k

(download the model, train, upload the update). Speeds and bandwidths are lognormal, so a few
clients are very slow: the heavy tail that makes synchronous FedAvg wait. A client is present
in a round with probability p (optionally following a daily cycle with its own phase), and a
present client may drop out after it starts (it never arrives). :func:`settle_round` turns the
arrival times into the clients a round keeps and how long it lasts. Every draw depends on the
seed and the client's id, never on its position. See notebook 07.
"""
from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from .._validation import check_scalar

DAY_SECONDS = 86_400.0


def settle_round(arrivals, *, deadline: float | None = None, n_wanted: int | None = None,
                 timeout: float = math.inf) -> tuple[npt.NDArray[np.intp], float]:
    """The clients a round keeps and its duration, from their arrival times.

    The server stops waiting at ``limit = min(deadline, timeout)``. Without ``n_wanted`` it keeps
    every update that arrives by then, and the round lasts until the last of them if all the
    selected clients arrived, else until ``limit``. With ``n_wanted`` = K (over-selection) it keeps
    the first K to arrive (equal times: lower index first) and the round lasts until the K-th; if
    fewer than K arrive by ``limit``, it keeps those and lasts until ``limit``.

    Parameters
    ----------
    arrivals : array_like of shape (m,)
        Seconds after the round's start at which each selected client's update arrives
        (``inf``: it dropped out).
    deadline : float > 0 or None
    n_wanted : int >= 1 or None
    timeout : float > 0, default=inf
        How long the server waits at most; with neither a deadline nor a finite timeout, a
        client that never arrives is an error.

    Returns
    -------
    kept : ndarray of int
        Indices into ``arrivals`` of the kept updates, in increasing order.
    duration : float
        Seconds the round lasts.
    """
    arrivals = _check_arrivals(arrivals, "settle_round")
    if deadline is not None:
        check_scalar(deadline, "deadline", "settle_round", low=0)
    if n_wanted is not None:
        check_scalar(n_wanted, "n_wanted", "settle_round", int, low=1, closed="left")
    check_scalar(timeout, "timeout", "settle_round", low=0, allow_inf=True)
    limit = min(math.inf if deadline is None else deadline, timeout)
    arrived = np.flatnonzero(np.isfinite(arrivals) & (arrivals <= limit))
    if n_wanted is not None and len(arrived) >= n_wanted:
        first = np.argsort(arrivals, kind="stable")[:n_wanted]
        return np.sort(first), float(arrivals[first[-1]])
    if len(arrived) == len(arrivals):
        return arrived, float(arrivals.max(initial=0.0))
    if limit == math.inf:
        raise ValueError("settle_round cannot end a round that waits for every client when one never "
                         "arrives: give a finite 'deadline' or 'timeout'. Got neither.")
    return arrived, float(limit)


def _check_arrivals(arrivals, owner: str) -> np.ndarray:
    values = np.asarray(arrivals, dtype=np.float64)
    if values.ndim != 1 or np.isnan(values).any() or (values < 0).any():
        raise ValueError(f"The 'arrivals' parameter of {owner} must be a 1-d array of times >= 0 "
                         f"(inf for a client that never arrives). Got {arrivals!r} instead.")
    return values


class SimulatedSystems:
    """Client speeds, links and availability, drawn from a seed and each client's id.

    Parameters
    ----------
    speed_median : float > 0, default=100.0
        The median compute speed, in samples per second (one epoch over n samples takes
        n / speed seconds).
    speed_sigma : float >= 0, default=1.0
        The lognormal spread of speeds: log(speed) ~ N(log(median), sigma^2). sigma = 1 puts
        one client in twenty more than 5x slower than the median.
    bandwidth_median : float > 0, default=1e6
        The median link bandwidth, bytes per second, both ways.
    bandwidth_sigma : float >= 0, default=0.5
    availability : float in (0, 1], default=1.0
        p, the probability that a client is present when a round starts.
    daily_amplitude : float in [0, 1], default=0.0
        With a > 0 a client's presence follows a day: p_k(t) = p (1 + a cos(2 pi (t / 86400 -
        phase_k))), clipped to [0, 1], with its own phase (its time zone).
    dropout : float in [0, 1), default=0.0
        The probability that a client that started a round drops out before it sends its update.
    seed : int >= 0, default=0
    """

    def __init__(self, *, speed_median: float = 100.0, speed_sigma: float = 1.0,
                 bandwidth_median: float = 1e6, bandwidth_sigma: float = 0.5, availability: float = 1.0,
                 daily_amplitude: float = 0.0, dropout: float = 0.0, seed: int = 0):
        owner = "SimulatedSystems"
        self.speed_median = check_scalar(speed_median, "speed_median", owner, low=0)
        self.speed_sigma = check_scalar(speed_sigma, "speed_sigma", owner, low=0, closed="left")
        self.bandwidth_median = check_scalar(bandwidth_median, "bandwidth_median", owner, low=0)
        self.bandwidth_sigma = check_scalar(bandwidth_sigma, "bandwidth_sigma", owner, low=0, closed="left")
        self.availability = check_scalar(availability, "availability", owner, low=0, high=1, closed="right")
        self.daily_amplitude = check_scalar(daily_amplitude, "daily_amplitude", owner, low=0, high=1,
                                            closed="both")
        self.dropout = check_scalar(dropout, "dropout", owner, low=0, high=1, closed="left")
        self.seed = check_scalar(seed, "seed", owner, int, low=0, closed="left")
        self._static: dict = {}

    def get_params(self) -> dict:
        """The constructor parameters: what identifies these systems in a checkpoint."""
        from .identity import constructor_params

        return constructor_params(self)

    def _per_client(self, stream: int, cids) -> np.ndarray:
        """A standard normal (stream 0, 1) or uniform (stream 2) draw for each client id: element
        ``cid`` of one long draw, so a client's value never depends on which others exist."""
        cids = np.asarray(cids, dtype=np.int64)
        size = int(cids.max(initial=-1)) + 1
        cached = self._static.get(stream)
        if cached is None or len(cached) < size:
            rng = np.random.default_rng([self.seed, stream])
            cached = rng.random(size) if stream == 2 else rng.standard_normal(size)
            self._static[stream] = cached
        return cached[cids]

    def speeds(self, cids) -> np.ndarray:
        """Samples per second of each client in ``cids``."""
        return self.speed_median * np.exp(self.speed_sigma * self._per_client(0, cids))

    def bandwidths(self, cids) -> np.ndarray:
        """Bytes per second of each client's link."""
        return self.bandwidth_median * np.exp(self.bandwidth_sigma * self._per_client(1, cids))

    def presence_probability(self, cids, t: float) -> np.ndarray:
        """p_k(t), each client's probability of being present at simulated time ``t``."""
        p = np.full(len(np.asarray(cids)), self.availability)
        if self.daily_amplitude:
            phase = self._per_client(2, cids)
            p = p * (1 + self.daily_amplitude * np.cos(2 * np.pi * (t / DAY_SECONDS - phase)))
        return np.clip(p, 0.0, 1.0)

    def _round_uniform(self, stream: int, server_round: int, cids) -> np.ndarray:
        """A uniform draw per (round, client id)."""
        cids = np.asarray(cids, dtype=np.int64)
        draws = np.random.default_rng([self.seed, stream, server_round]).random(int(cids.max(initial=-1)) + 1)
        return draws[cids]

    def present(self, cids, server_round: int, t: float) -> list:
        """The clients of ``cids`` present when round ``server_round`` starts at time ``t``."""
        cids = list(cids)
        if self.availability == 1.0 and not self.daily_amplitude:
            return cids
        keep = self._round_uniform(3, server_round, cids) < self.presence_probability(cids, t)
        return [cid for cid, ok in zip(cids, keep) if ok]

    def arrival_times(self, cids, sizes, epochs, n_bytes: int, server_round: int) -> np.ndarray:
        """Seconds from a round's start to each client's update, inf for those that drop out.

        ``sizes`` and ``epochs`` give each client's samples and local epochs (scalars or one
        per client); ``n_bytes`` is the size of the model each way.
        """
        cids = list(cids)
        if not cids:
            return np.zeros(0)
        compute = np.asarray(epochs) * np.asarray(sizes, dtype=np.float64) / self.speeds(cids)
        arrivals = compute + 2 * n_bytes / self.bandwidths(cids)
        if self.dropout:
            arrivals[self._round_uniform(4, server_round, cids) < self.dropout] = np.inf
        return arrivals

    def epoch_seconds(self, cids, sizes) -> np.ndarray:
        """Seconds one local epoch takes each client."""
        return np.asarray(sizes, dtype=np.float64) / self.speeds(list(cids))

    def link_seconds(self, cids, n_bytes: int) -> np.ndarray:
        """Seconds each client needs to download and upload ``n_bytes``."""
        return 2 * n_bytes / self.bandwidths(list(cids))

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.get_params().items())
        return f"SimulatedSystems({args})"


def simulated_seconds(history: dict) -> list:
    """The simulated clock after each round of a history (0.0 for round 0)."""
    return [row.get("simulated_seconds", 0.0) if row else 0.0 for row in history["strategy_metrics"]]
