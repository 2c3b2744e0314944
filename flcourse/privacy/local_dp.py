"""Local differential privacy for federated averaging: each client clips and noises its own change
before it leaves the device, the contrast to DP-FedAvg's central noise. See notebook 08.

Central DP (:class:`~flcourse.federated.DPFedAvg`). The m sampled clients send their changes; the
server clips each to norm C, adds one draw of N(0, (z C)^2 I) to the sum and divides by q N:

    w <- w + eta (sum_k clip(Delta_k) + xi) / (q N),     xi ~ N(0, (z C)^2 I).

Local DP (:class:`LocalDPClient`). Client k sends clip(Delta_k) + xi_k itself, xi_k ~ N(0, (z C)^2 I)
drawn on the device; the server adds nothing (DPFedAvg with ``noise_multiplier=0`` and a clip norm
no report reaches). The sum of the m reports carries m independent draws, N(0, m (z C)^2 I).

The noise on the average, per coordinate (:func:`mean_noise_std`), with the same denominator D
(q N for DP-FedAvg's estimator, or the m reports received for their mean) and eta = 1:

    central:  z C / D,            local:  z C sqrt(m) / D,

so at equal z the local noise is sqrt(m) times the central one: for D = m, z C / m against
z C / sqrt(m). To add no more noise than central DP, a local client would need z / sqrt(m).

Privacy of one client (:func:`local_dp_epsilon`). Whoever sees a report (the server) knows who
sent it: Poisson sampling hides nothing from it, so there is no amplification by subsampling.
Each report is a Gaussian mechanism on the clipped change with noise z C; a client that took
part in k rounds has composed k of them, an RDP of k alpha / (2 z_eff^2) at order alpha, which
is the accountant's with q = 1 (:func:`~flcourse.privacy.epsilon`). The sensitivity, the
distance between the clipped changes the neighbouring inputs can give, sets z_eff:

- ``"add_remove"`` (the default): the report against that of the same client holding no data
  (a zero change), ||clip(Delta) - 0|| <= C, so z_eff = z. It is the neighbour relation of the
  central accountant (one client in or out), hence the like-for-like comparison with DP-FedAvg;
- ``"replace"``: any two data sets of the client, the textbook definition of local DP
  (Kasiviswanathan et al. 2008): ||clip(Delta) - clip(Delta')|| <= 2 C, so z_eff = z / 2.

The guarantee holds against the server itself, and whatever the other clients do; central DP
needs a server trusted to add its noise, and gives each client the subsampling amplification.
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers

import numpy as np

from .._validation import check_choice, check_scalar
from ..federated.federation import client_fingerprint
from ..federated.messages import FitRes, reply_fields
from ..federated.runners import can_train_together
from ..federated.strategies.dpfedavg import clip_by_norm
from ..federated.wrapper import ClientWrapper
from .accountant import epsilon, noise_multiplier_for_epsilon

NOISE_STREAM = 0x4C4450  # ("LDP") the last key of a client's noise stream, apart from its minibatch stream
NEIGHBOURS = {"add_remove": 1.0, "replace": 2.0}  # the sensitivity of a report, in units of C


class LocalDPClient(ClientWrapper):
    """A client that clips its change to norm C and adds N(0, (z C)^2 I) to it before replying.

    It trains the wrapped client as asked, takes its change Delta = w_k - w_t (the reply itself
    when ``config["update"] == "delta"``, as DPFedAvg asks, else the reply minus ``params``), and
    answers in the same form with clip(Delta) + xi. The noise xi of a round comes from
    ``numpy.random.default_rng([seed, cid, config["seed"], NOISE_STREAM])``: the client's seed,
    its id and the round's seed from the server, so it is the same wherever the client runs, in
    whatever order the clients come, and after a resume; it differs from round to round and from
    client to client. The reply keeps the inner client's ``n_examples``, metrics and extras
    (extras are not noised: a strategy that asks for some, as SCAFFOLD does, is not private).
    Wrappers of clients that train together (NumpyClients of one size) train in one stack too.

    Parameters
    ----------
    client : client with a non-negative int ``cid``
        The client whose change is privatised (any object with ``fit``).
    clip_norm : float > 0
        C.
    noise_multiplier : float >= 0
        z: the noise has standard deviation z C per coordinate.
    seed : int >= 0, default=0
    """

    def __init__(self, client, *, clip_norm: float, noise_multiplier: float, seed: int = 0):
        owner = "LocalDPClient"
        super().__init__(client)
        cid = getattr(client, "cid", None)
        if isinstance(cid, bool) or not isinstance(cid, numbers.Integral) or cid < 0:
            raise TypeError(f"The 'client' parameter of {owner} must have a non-negative int 'cid' (its "
                            f"noise is drawn from it). Got cid={cid!r} instead.")
        self.clip_norm = check_scalar(clip_norm, "clip_norm", owner, low=0)
        self.noise_multiplier = check_scalar(noise_multiplier, "noise_multiplier", owner, low=0, closed="left")
        self.seed = check_scalar(seed, "seed", owner, int, low=0, closed="left")

    def stack_key(self, config: dict):
        """Wrappers whose inner clients can train together (:meth:`fit_stacked`) share the inner key;
        any other wrapper gets a key of its own, and trains alone."""
        if not can_train_together(self.client):
            return ("alone", id(self))
        return (LocalDPClient.fit_stacked, type(self.client), self.client.stack_key(config))

    def fit(self, params, config: dict) -> FitRes:
        """Train the inner client; answer with its clipped, noised change (or the parameters)."""
        check_round_config(config)
        return self.reply(params, config, self.client.fit(params, config))

    @classmethod
    def fit_stacked(cls, clients: list, params, config: dict) -> list[FitRes]:
        """``fit`` for wrappers of equal :meth:`stack_key`: their inner clients train in one stack,
        then each privatises its own change; element k is bit for bit ``clients[k].fit(params, config)``."""
        check_round_config(config)
        inner = [client.client for client in clients]
        replies = type(inner[0]).fit_stacked(inner, params, config)
        return [client.reply(params, config, reply) for client, reply in zip(clients, replies)]

    def reply(self, params, config: dict, inner_reply) -> FitRes:
        """The inner client's reply with its change privatised, in the form the config asks for."""
        update, n_examples, metrics, extras = reply_fields(inner_reply)
        as_delta = config.get("update") == "delta"
        start = np.asarray(params, dtype=np.float64)
        delta = np.asarray(update, dtype=np.float64) - (0.0 if as_delta else start)
        report = self.privatise(delta, config["seed"])
        return FitRes(report if as_delta else start + report, n_examples, metrics, extras)

    def privatise(self, delta, round_seed: int) -> np.ndarray:
        """clip(delta) + N(0, (z C)^2 I), the noise drawn from (seed, cid, round_seed)."""
        clipped, _ = clip_by_norm(delta, self.clip_norm)
        rng = np.random.default_rng([self.seed, int(self.cid), int(round_seed), NOISE_STREAM])
        return clipped + rng.normal(0.0, self.noise_multiplier * self.clip_norm, size=clipped.shape)

    def fingerprint(self) -> str:
        """What identifies this client in a checkpoint: its settings and the inner client's data."""
        settings = [self.clip_norm, self.noise_multiplier, self.seed]
        text = json.dumps(["LocalDPClient", settings, client_fingerprint(self.client)], default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def __repr__(self) -> str:
        return (f"LocalDPClient({self.client!r}, clip_norm={self.clip_norm!r}, "
                f"noise_multiplier={self.noise_multiplier!r}, seed={self.seed})")


def check_round_config(config) -> dict:
    """Return ``config`` if it is a dict with the round's seed (an int >= 0), else raise."""
    if not isinstance(config, dict) or "seed" not in config:
        raise ValueError(f"The 'config' parameter of LocalDPClient.fit must be a dict with the round's "
                         f"'seed'. Got {config!r} instead.")
    check_scalar(config["seed"], 'config["seed"]', "LocalDPClient.fit", int, low=0, closed="left")
    return config


def local_dp_epsilon(noise_multiplier: float, n_reports: int, delta: float, *,
                     neighbour: str = "add_remove") -> float:
    """epsilon of one client under local DP after ``n_reports`` noised reports, at ``delta``.

    Each report is a Gaussian mechanism with noise multiplier z_eff (z, or z / 2 for
    ``"replace"``), seen by the server with no subsampling amplification; k reports compose to
    ``epsilon(z_eff, 1.0, k, delta)`` of the RDP accountant. It depends on the client's own
    reports alone, not on N or on the other clients. No report releases nothing: 0.

    Parameters
    ----------
    noise_multiplier : float >= 0
        z, each report's noise over C.
    n_reports : int >= 0
        k, the rounds the client took part in (at most the number of rounds).
    delta : float in (0, 1)
    neighbour : {"add_remove", "replace"}, default="add_remove"

    Returns
    -------
    float
        epsilon (inf for z = 0 and k >= 1).
    """
    owner = "local_dp_epsilon"
    check_scalar(noise_multiplier, "noise_multiplier", owner, low=0, closed="left")
    check_scalar(n_reports, "n_reports", owner, int, low=0, closed="left")
    check_scalar(delta, "delta", owner, low=0, high=1)
    z_eff = noise_multiplier / NEIGHBOURS[check_choice(neighbour, "neighbour", owner, NEIGHBOURS)]
    if n_reports == 0:
        return 0.0
    return math.inf if z_eff == 0 else epsilon(z_eff, 1.0, int(n_reports), delta)


def local_dp_noise_multiplier(target_epsilon: float, n_reports: int, delta: float, *,
                              neighbour: str = "add_remove") -> float:
    """The smallest z (to a relative 1e-6) with ``local_dp_epsilon(z, n_reports, delta) <= target``.

    Parameters
    ----------
    target_epsilon : float > 0
    n_reports : int >= 1
    delta : float in (0, 1)
    neighbour : {"add_remove", "replace"}, default="add_remove"

    Returns
    -------
    float
    """
    owner = "local_dp_noise_multiplier"
    check_scalar(target_epsilon, "target_epsilon", owner, low=0)
    check_scalar(n_reports, "n_reports", owner, int, low=1, closed="left")
    check_scalar(delta, "delta", owner, low=0, high=1)
    scale = NEIGHBOURS[check_choice(neighbour, "neighbour", owner, NEIGHBOURS)]
    return scale * noise_multiplier_for_epsilon(target_epsilon, 1.0, int(n_reports), delta)


def mean_noise_std(noise_multiplier: float, clip_norm: float, n_reports: float, *, where: str = "central",
                   denominator: float | None = None) -> float:
    """The standard deviation per coordinate of the noise on the average of ``n_reports`` changes.

    Central DP adds one draw N(0, (z C)^2) to the sum, local DP one per report, m in all:

        central: z C / D,        local: z C sqrt(m) / D,

    with D the ``denominator``: q N for DP-FedAvg's estimator, or m (the default) for the mean of
    the reports received, where the local noise is z C / sqrt(m). Multiply by the server's
    learning rate for the noise on the parameters. At equal z and D, local / central = sqrt(m).

    Parameters
    ----------
    noise_multiplier : float >= 0
        z.
    clip_norm : float > 0
        C.
    n_reports : float > 0
        m, the reports summed (an expected number q N is allowed).
    where : {"central", "local"}, default="central"
    denominator : float > 0 or None, default=None
        D; None means m.

    Returns
    -------
    float
    """
    owner = "mean_noise_std"
    check_scalar(noise_multiplier, "noise_multiplier", owner, low=0, closed="left")
    check_scalar(clip_norm, "clip_norm", owner, low=0)
    check_scalar(n_reports, "n_reports", owner, low=0)
    check_choice(where, "where", owner, {"central", "local"})
    if denominator is not None:
        check_scalar(denominator, "denominator", owner, low=0)
    draws = 1.0 if where == "central" else float(n_reports)
    return noise_multiplier * clip_norm * math.sqrt(draws) / (n_reports if denominator is None else denominator)
