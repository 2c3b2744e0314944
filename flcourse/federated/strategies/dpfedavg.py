"""DP-FedAvg (McMahan, Ramage, Talwar, Zhang 2018) with adaptive clipping (Andrew, Thakkar,
McMahan, Ramaswamy 2021). See notebook 08.

Each client is sampled independently with probability q (Poisson sampling: what the RDP
accountant of the subsampled Gaussian assumes). A sampled client sends its change Delta_k =
w_k - w_t, the server clips it to norm C and adds Gaussian noise to the sum:

    clip(Delta) = Delta * min(1, C / ||Delta||)          (a zero change stays zero),
    w_{t+1} = w_t + server_lr * (sum_k clip(Delta_k) + N(0, (z C)^2 I)) / (q N),

with N the number of clients. The denominator q N is fixed (the paper's estimator with
weights 1): a round in which nobody is sampled still adds pure noise, z C server_lr / (q N)
per coordinate. The changes are not weighted by n_k: each client counts once.

Adaptive clipping estimates the fraction of changes that were *not* clipped,

    b_k = 1 if ||Delta_k|| <= C else 0,    b = (sum_k b_k + N(0, sigma_b^2)) / (q N),

and moves C geometrically towards the gamma-quantile of the norms: C <- C exp(-eta_C (b - gamma)).
Too many unclipped changes (b > gamma) shrink C; too few grow it. (Flower sets the bit for
*clipped* changes, so its C runs the wrong way.) Here the server computes b_k from the change it
receives, a simulation; deployed, the client computes it and the sum is noised. The paper then
raises the noise on the changes to z_Delta = (z^-2 - (2 sigma_b)^-2)^(-1/2) so that both
releases together cost z; here ``noise_multiplier`` is z_Delta itself: account for the two.

The round's seed (kept in ``state_``, with C) seeds the noise, so a resumed run adds the same
noise as the uninterrupted one.
"""
from __future__ import annotations

import math

import numpy as np

from ..._validation import Interval
from .base import local_training_config
from .fedavg import FedAvg


def clip_by_norm(update: np.ndarray, clip_norm: float) -> tuple[np.ndarray, bool]:
    """(update * min(1, C / ||update||), whether it was left whole, i.e. ||update|| <= C).

    A 0-d or all-zero update has norm 0 and is returned unchanged. The norm is taken of the
    update divided by its largest entry, so that it neither overflows nor underflows."""
    update = np.asarray(update, dtype=np.float64)
    scale = float(np.max(np.abs(update), initial=0.0))
    norm = scale * float(np.linalg.norm(update.ravel() / scale)) if scale > 0 else 0.0
    if norm <= clip_norm:
        return update.copy(), True
    return update * (clip_norm / norm), False


class DPFedAvg(FedAvg):
    """Differentially private FedAvg on clipped changes, with optional adaptive clipping.

    Parameters
    ----------
    sampling_rate : float in (0, 1], default=1.0
        q, the probability with which each client is sampled, independently, every round.
    clip_norm : float > 0, default=1.0
        C, the clipping norm (the initial one with adaptive clipping).
    noise_multiplier : float >= 0, default=1.0
        z: the noise on the sum of clipped changes has standard deviation z C per coordinate.
    server_lr : float > 0, default=1.0
    target_quantile : float in [0, 1], or None, default=None
        gamma, the fraction of changes to leave unclipped; None keeps C fixed.
    clip_lr : float > 0, default=0.2
        eta_C, the step of the geometric update of C (the paper's 0.2).
    clip_count_stddev : float >= 0, or None, default=None
        sigma_b, the noise on the count of unclipped changes; None gives q N / 20 (the paper's
        m / 20, m the expected number of clients per round).
    local_epochs, batch_size, lr
        As for :class:`FedAvg`.
    """

    parameter_constraints = {
        **{key: FedAvg.parameter_constraints[key] for key in ("local_epochs", "batch_size", "lr")},
        "sampling_rate": Interval(float, 0, 1, closed="right"),
        "clip_norm": Interval(float, 0, None),
        "noise_multiplier": Interval(float, 0, None, closed="left"),
        "server_lr": Interval(float, 0, None),
        "target_quantile": Interval(float, 0, 1, closed="both", none_ok=True),
        "clip_lr": Interval(float, 0, None),
        "clip_count_stddev": Interval(float, 0, None, closed="left", none_ok=True),
    }

    def __init__(self, *, sampling_rate: float = 1.0, clip_norm: float = 1.0, noise_multiplier: float = 1.0,
                 server_lr: float = 1.0, target_quantile: float | None = None, clip_lr: float = 0.2,
                 clip_count_stddev: float | None = None, local_epochs: int = 1, batch_size=None,
                 lr: float = 0.1):
        super().__init__(fraction_fit=1.0, local_epochs=local_epochs, batch_size=batch_size, lr=lr)
        self.sampling_rate, self.clip_norm, self.noise_multiplier = sampling_rate, clip_norm, noise_multiplier
        self.server_lr, self.target_quantile, self.clip_lr = server_lr, target_quantile, clip_lr
        self.clip_count_stddev = clip_count_stddev

    def initialize(self, params):
        self.state_ = {"clip_norm": float(self.clip_norm)}

    def configure_fit(self, server_round, params, cids, rng) -> dict:
        """{cid: config} of the Poisson sample: each client with probability q, from ``rng``
        (the round's seed first); the sample may be empty. Clients answer with their change."""
        config = {**local_training_config(self, server_round, rng), "update": "delta"}
        self.state_["seed"], self.state_["n_clients"] = config["seed"], len(cids)
        sampled = rng.random(len(cids)) < self.sampling_rate
        return {cids[k]: config for k in np.flatnonzero(sampled)}

    def run_round(self, server_round, params, cids, rng, grid):
        """Sample, fit, aggregate, even when nobody is sampled or answers: the noise is added
        every round, as the accountant assumes (the server's default round skips empty ones)."""
        instructions = self.configure_fit(server_round, params.copy(), cids, rng)
        results, failures = grid.fit(params, instructions)
        return self.aggregate_fit(server_round, params.copy(), results, failures)

    def aggregate_fit(self, server_round, params, results, failures):
        """w + server_lr (sum of clipped changes + noise) / (q N); C updated if adaptive.
        Metrics: the C used, the fraction of received changes left unclipped (None if none
        arrived), the number received and the next C."""
        clip_norm, expected = self.state_["clip_norm"], self.sampling_rate * self.state_["n_clients"]
        total, n_unclipped = np.zeros_like(params, dtype=np.float64), 0
        for update in results:
            clipped, whole = clip_by_norm(update.params, clip_norm)
            total += clipped
            n_unclipped += whole
        noise_rng = np.random.default_rng([self.state_["seed"], 8])
        total += noise_rng.normal(0.0, self.noise_multiplier * clip_norm, size=total.shape)
        if self.target_quantile is not None:
            sigma_b = expected / 20 if self.clip_count_stddev is None else self.clip_count_stddev
            estimate = (n_unclipped + noise_rng.normal(0.0, sigma_b)) / expected
            self.state_["clip_norm"] = float(clip_norm * math.exp(-self.clip_lr * (estimate - self.target_quantile)))
        metrics = {"clip_norm": clip_norm, "n_sampled": len(results), "next_clip_norm": self.state_["clip_norm"],
                   "fraction_unclipped": n_unclipped / len(results) if results else None}
        return params + self.server_lr * total / expected, metrics
