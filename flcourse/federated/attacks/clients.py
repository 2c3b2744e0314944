"""Malicious clients: wrappers that falsify an honest client's update, and a label flipper.

A model-poisoning wrapper holds an honest client and trains it as asked; its ``fit`` then
replaces the honest change Δ = w_k - w_t by the attack's (:mod:`.formulas`) and answers in
the form the strategy asked for: the change itself when ``config["update"] == "delta"``,
else the parameters w_t + attack(Δ). The reply keeps the honest ``n_examples``, metrics and
extras, so the attacker looks like any client. A wrapper passes on the inner client's
``cid``, ``n_samples``, ``state`` and ``evaluate``; its :meth:`~PoisonedClient.fingerprint`
names the attack, its settings and the inner client's data, so a checkpoint of an attacked run
never resumes an honest one, nor another attack.

Data poisoning needs no wrapper: :class:`LabelFlipClient` (and
:class:`~flcourse.federated.attacks.BackdoorClient`) is a NumpyClient on falsified labels,
which trains in one stack with the others of its kind. See notebook 07.
"""
from __future__ import annotations

import hashlib
import json
import numbers

import numpy as np

from ..._validation import check_choice, check_scalar
from ...models import Model
from ..client import NumpyClient
from ..federation import client_fingerprint
from ..messages import FitRes, reply_fields
from ..wrapper import ClientWrapper
from .formulas import flip_labels, gaussian_noise, scale_update, sign_flip


class PoisonedClient(ClientWrapper):
    """Base of the model-poisoning wrappers: subclasses define ``craft(delta, config)``.

    Parameters
    ----------
    client : client
        The honest client whose training the attacker runs (any object with ``fit``).
    """

    def fit(self, params, config: dict) -> FitRes:
        """Train the honest client, then answer with the crafted change (or parameters)."""
        update, n_examples, metrics, extras = reply_fields(self.client.fit(params, config))
        as_delta = isinstance(config, dict) and config.get("update") == "delta"
        start = np.asarray(params, dtype=np.float64)
        delta = np.asarray(update, dtype=np.float64) - (0.0 if as_delta else start)
        crafted = np.asarray(self.craft(delta, config), dtype=np.float64)
        return FitRes(crafted if as_delta else start + crafted, n_examples, metrics, extras)

    def craft(self, delta: np.ndarray, config: dict) -> np.ndarray:
        raise NotImplementedError

    def fingerprint(self) -> str:
        """What identifies this attacker in a checkpoint: its attack, the attack's settings and
        the inner client's data, so a checkpoint resumes only the same attack on the same data."""
        settings = {key: value for key, value in sorted(vars(self).items()) if key != "client"}
        text = json.dumps([type(self).__name__, settings, client_fingerprint(self.client)], default=str)
        return hashlib.sha256(text.encode()).hexdigest()


class SignFlipClient(PoisonedClient):
    """Answers -s Δ (:func:`~flcourse.federated.attacks.sign_flip`).

    Parameters
    ----------
    client : client
    scale : float > 0, default=1.0
        s.
    """

    def __init__(self, client, *, scale: float = 1.0):
        super().__init__(client)
        self.scale = check_scalar(scale, "scale", "SignFlipClient", low=0)

    def craft(self, delta, config):
        return sign_flip(delta, self.scale)

    def __repr__(self) -> str:
        return f"SignFlipClient({self.client!r}, scale={self.scale!r})"


class ScalingClient(PoisonedClient):
    """Answers γ Δ (:func:`~flcourse.federated.attacks.scale_update`): boosting, or model
    replacement with γ = n / η; around a BackdoorClient, a boosted backdoor.

    Parameters
    ----------
    client : client
    gamma : float > 0
    """

    def __init__(self, client, *, gamma: float):
        super().__init__(client)
        self.gamma = check_scalar(gamma, "gamma", "ScalingClient", low=0)

    def craft(self, delta, config):
        return scale_update(delta, self.gamma)

    def __repr__(self) -> str:
        return f"ScalingClient({self.client!r}, gamma={self.gamma!r})"


class GaussianNoiseClient(PoisonedClient):
    """Answers N(0, σ² I) (``mode="replace"``, Fang et al. 2020) or Δ + N(0, σ² I) (``"add"``).

    The noise of a round comes from ``(seed, cid, config["seed"])``: the attacker's seed, its
    id and the round's seed from the server, so it is the same wherever the client runs and
    after a resume, and differs from round to round.

    Parameters
    ----------
    client : client with an int ``cid``
    sigma : float > 0, default=1.0
    mode : {"replace", "add"}, default="replace"
    seed : int >= 0, default=0
    """

    def __init__(self, client, *, sigma: float = 1.0, mode: str = "replace", seed: int = 0):
        super().__init__(client)
        cid = getattr(client, "cid", None)
        if isinstance(cid, bool) or not isinstance(cid, numbers.Integral) or cid < 0:
            raise TypeError(f"The 'client' parameter of GaussianNoiseClient must have a non-negative int "
                            f"'cid' (its noise is drawn from it). Got cid={cid!r} instead.")
        self.sigma = check_scalar(sigma, "sigma", "GaussianNoiseClient", low=0)
        self.mode = check_choice(mode, "mode", "GaussianNoiseClient", {"replace", "add"})
        self.seed = check_scalar(seed, "seed", "GaussianNoiseClient", int, low=0, closed="left")

    def craft(self, delta, config):
        rng = np.random.default_rng([self.seed, int(self.cid), int(config["seed"])])
        return gaussian_noise(delta, self.sigma, rng, mode=self.mode)

    def __repr__(self) -> str:
        return f"GaussianNoiseClient({self.client!r}, sigma={self.sigma!r}, mode={self.mode!r}, seed={self.seed})"


class LabelFlipClient(NumpyClient):
    """A :class:`~flcourse.federated.NumpyClient` that trains on the labels C - 1 - y
    (:func:`~flcourse.federated.attacks.flip_labels`); C is the model's ``n_classes``.

    Parameters
    ----------
    model : Model (a classifier)
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        The true labels; the client keeps the flipped ones.
    cid : int
    step : LocalStep, optional
    """

    def __init__(self, model: Model, X, y, *, cid: int = 0, step=None):
        n_classes = getattr(model, "n_classes", None) if isinstance(model, Model) else None
        if isinstance(model, Model) and n_classes is None:
            raise TypeError(f"The 'model' parameter of LabelFlipClient must be a classifier (n_classes set). "
                            f"Got {type(model).__name__} instead.")
        super().__init__(model, X, flip_labels(y, n_classes) if n_classes else y, cid=cid, step=step)

    def __repr__(self) -> str:
        return f"LabelFlipClient(cid={self.cid}, n_samples={len(self.y)}, model={self.model!r})"
