"""Robust aggregation strategies: FedAvg's rounds, with a defence in place of the average.

Each round the selected clients send their change Delta_k = w_k - w_t (``config["update"] =
"delta"``), and the server combines the stack of changes with a defence of
:mod:`flcourse.federated.defences`:

    w_{t+1} = w_t + server_lr * AGG(Delta_1, ..., Delta_m).

The changes are not weighted by n_k, as FedAvg weights them: a Byzantine client can claim any
number of examples, so a robust rule counts clients, not examples. With ``bucket_size`` s > 1
the changes are first shuffled and averaged in buckets of s (bucketing, Karimireddy et al. 2022)
and the defence combines the bucket means; the shuffle is drawn from the round's seed (kept in
``state_``), so a resumed run shuffles as the uninterrupted one. A defence is one method,
:meth:`RobustFedAvg.defend`; each subclass below overrides it. See notebook 07.
"""
from __future__ import annotations

import numpy as np

from ..._validation import Interval
from ..defences import bucket_means, centered_clipping, geometric_median, median, norm_bounding, trimmed_mean
from .base import local_training_config, sample_clients
from .fedavg import FedAvg

ROBUST_CONSTRAINTS = {**{key: FedAvg.parameter_constraints[key]
                         for key in ("fraction_fit", "local_epochs", "batch_size", "lr")},
                      "server_lr": Interval(float, 0, None),
                      "bucket_size": Interval(int, 1, None, closed="left")}


class RobustFedAvg(FedAvg):
    """FedAvg on the clients' changes, combined by :meth:`defend`: here their plain mean.

    Parameters
    ----------
    fraction_fit, local_epochs, batch_size, lr
        As for :class:`FedAvg` (no stragglers).
    server_lr : float > 0, default=1.0
    bucket_size : int >= 1, default=1
        s: average the shuffled changes in buckets of s before the defence; 1 = no bucketing.
    """

    parameter_constraints = ROBUST_CONSTRAINTS

    def __init__(self, *, fraction_fit: float = 1.0, local_epochs: int = 1, batch_size=None,
                 lr: float = 0.1, server_lr: float = 1.0, bucket_size: int = 1):
        super().__init__(fraction_fit=fraction_fit, local_epochs=local_epochs,
                         batch_size=batch_size, lr=lr)
        self.server_lr = server_lr
        self.bucket_size = bucket_size

    def configure_fit(self, server_round, params, cids, rng) -> dict:
        """{cid: config} for the selected clients, who answer with their change."""
        config = {**local_training_config(self, server_round, rng), "update": "delta"}
        self.state_["seed"] = config["seed"]
        return {cids[k]: config for k in sample_clients(len(cids), self.fraction_fit, rng)}

    def aggregate_fit(self, server_round, params, results, failures):
        """w + server_lr * defend(changes, or their bucket means); the defence's metrics, with
        ``selected_cids`` for a defence that selects updates."""
        cids = [u.cid for u in results]
        rows, groups = np.stack([u.params for u in results]), [[cid] for cid in cids]
        if self.bucket_size > 1:
            rng = np.random.default_rng([self.state_["seed"], 1])
            rows, buckets = bucket_means(rows, self.bucket_size, rng)
            groups = [[cids[k] for k in bucket] for bucket in buckets]
        try:
            aggregate, metrics = self.defend(rows)
        except ValueError as error:
            raise ValueError(f"{type(self).__name__} cannot combine the {len(rows)} rows of round "
                             f"{server_round} ({len(cids)} updates, bucket_size={self.bucket_size}): "
                             f"{error}") from None
        if "selected" in metrics:
            metrics["selected_cids"] = sorted(c for k in metrics.pop("selected") for c in groups[k])
        return params + self.server_lr * aggregate, metrics

    def defend(self, updates: np.ndarray) -> tuple[np.ndarray, dict]:
        """The aggregate of a stack of changes (one per client or bucket), and metrics; a
        ``"selected"`` metric lists the rows used, by position. Override this for a new rule."""
        return updates.mean(axis=0), {}


class FedMedian(RobustFedAvg):
    """The coordinate-wise median of the changes (Yin et al. 2018; Flower's ``FedMedian``)."""

    def defend(self, updates):
        return median(updates), {}


class FedTrimmedAvg(RobustFedAvg):
    """The coordinate-wise beta-trimmed mean of the changes (Yin et al. 2018; Flower's
    ``FedTrimmedAvg``).

    Parameters
    ----------
    beta : float in [0, 0.5), default=0.2
        The fraction cut at each end of every coordinate (Flower's default).
    fraction_fit, local_epochs, batch_size, lr, server_lr, bucket_size
        As for :class:`RobustFedAvg`.
    """

    parameter_constraints = {**ROBUST_CONSTRAINTS, "beta": Interval(float, 0, 0.5, closed="left")}

    def __init__(self, *, beta: float = 0.2, fraction_fit: float = 1.0, local_epochs: int = 1,
                 batch_size=None, lr: float = 0.1, server_lr: float = 1.0, bucket_size: int = 1):
        super().__init__(fraction_fit=fraction_fit, local_epochs=local_epochs, batch_size=batch_size,
                         lr=lr, server_lr=server_lr, bucket_size=bucket_size)
        self.beta = beta

    def defend(self, updates):
        return trimmed_mean(updates, self.beta), {}


class GeometricMedian(RobustFedAvg):
    """The geometric median of the changes by smoothed Weiszfeld: RFA (Pillutla et al. 2022).

    Parameters
    ----------
    smoothing : float > 0, default=1e-6
        nu, the floor of the distances.
    max_iter : int >= 1, default=100
        The most Weiszfeld steps per round (RFA uses few: 3 to 5 are often enough).
    tol : float >= 0, default=1e-10
    fraction_fit, local_epochs, batch_size, lr, server_lr, bucket_size
        As for :class:`RobustFedAvg`.
    """

    parameter_constraints = {**ROBUST_CONSTRAINTS, "smoothing": Interval(float, 0, None),
                             "max_iter": Interval(int, 1, None, closed="left"),
                             "tol": Interval(float, 0, None, closed="left")}

    def __init__(self, *, smoothing: float = 1e-6, max_iter: int = 100, tol: float = 1e-10,
                 fraction_fit: float = 1.0, local_epochs: int = 1, batch_size=None, lr: float = 0.1,
                 server_lr: float = 1.0, bucket_size: int = 1):
        super().__init__(fraction_fit=fraction_fit, local_epochs=local_epochs, batch_size=batch_size,
                         lr=lr, server_lr=server_lr, bucket_size=bucket_size)
        self.smoothing, self.max_iter, self.tol = smoothing, max_iter, tol

    def defend(self, updates):
        aggregate, n_iter = geometric_median(updates, smoothing=self.smoothing, max_iter=self.max_iter,
                                             tol=self.tol, return_n_iter=True)
        return aggregate, {"weiszfeld_steps": n_iter}


class CenteredClipping(RobustFedAvg):
    """Centered clipping (Karimireddy, He, Jaggi 2021), momentum-free, around the last round's
    aggregate change v (the strategy's state, checkpointed; zeros before round 1):

        v <- v + (1/m) sum_k clip_tau(Delta_k - v), n_iter times;   w <- w + server_lr * v.

    Parameters
    ----------
    tau : float > 0, or inf, default=1.0
        The clipping radius; inf gives the mean. Set it near the spread of honest changes
        (1.0 is of the order of their norms for SoftmaxRegression on digits, E=5, B=10, lr=0.1).
    n_iter : int >= 1, default=1
    fraction_fit, local_epochs, batch_size, lr, server_lr, bucket_size
        As for :class:`RobustFedAvg`.
    """

    parameter_constraints = {**ROBUST_CONSTRAINTS, "tau": Interval(float, 0, None, inf_ok=True),
                             "n_iter": Interval(int, 1, None, closed="left")}

    def __init__(self, *, tau: float = 1.0, n_iter: int = 1, fraction_fit: float = 1.0,
                 local_epochs: int = 1, batch_size=None, lr: float = 0.1, server_lr: float = 1.0,
                 bucket_size: int = 1):
        super().__init__(fraction_fit=fraction_fit, local_epochs=local_epochs, batch_size=batch_size,
                         lr=lr, server_lr=server_lr, bucket_size=bucket_size)
        self.tau, self.n_iter = tau, n_iter

    def initialize(self, params):
        self.state_ = {"center": np.zeros_like(params, dtype=np.float64)}

    def defend(self, updates):
        aggregate = centered_clipping(updates, self.tau, center=self.state_["center"], n_iter=self.n_iter)
        self.state_["center"] = aggregate
        return aggregate, {}


class NormBounding(RobustFedAvg):
    """The mean of the changes, each clipped to norm at most ``bound`` (Sun et al. 2019).

    Parameters
    ----------
    bound : float > 0, or inf, default=1.0
        M; inf gives the mean. Set it near the norms of honest changes (0.8 to 1.7 for
        SoftmaxRegression on digits with E=5, B=10, lr=0.1, over 25 clients).
    fraction_fit, local_epochs, batch_size, lr, server_lr, bucket_size
        As for :class:`RobustFedAvg`.
    """

    parameter_constraints = {**ROBUST_CONSTRAINTS, "bound": Interval(float, 0, None, inf_ok=True)}

    def __init__(self, *, bound: float = 1.0, fraction_fit: float = 1.0, local_epochs: int = 1,
                 batch_size=None, lr: float = 0.1, server_lr: float = 1.0, bucket_size: int = 1):
        super().__init__(fraction_fit=fraction_fit, local_epochs=local_epochs, batch_size=batch_size,
                         lr=lr, server_lr=server_lr, bucket_size=bucket_size)
        self.bound = bound

    def defend(self, updates):
        return norm_bounding(updates, self.bound), {}
