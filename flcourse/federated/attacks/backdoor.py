"""A backdoor: a pixel trigger that makes the global model answer a target class.

The attacker stamps a small patch (the trigger) on some of its images and relabels them to
the target class, then trains honestly on that data (Gu et al. 2017's BadNets, brought to
federated learning by Bagdasaryan et al., AISTATS 2020, who also boost the update, see
:class:`~flcourse.federated.attacks.ScalingClient`). The model keeps its accuracy on clean
images, so the test accuracy does not show the attack; :func:`backdoor_success_rate` does.

On the digits (8 x 8 images, 64 features, scaled from 0..16 to [0, 1] by
:func:`flcourse.load_digits`) the default trigger sets the 2 x 2 bottom-right corner to 1, the
brightest value; those pixels are dim in the digits (0.1 on average, 0 in about half of the
images). See notebook 07.
"""
from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..._validation import check_rng, check_scalar, check_X
from ...models import Model
from ..client import NumpyClient


def check_trigger(image_shape, size: int, owner: str) -> tuple[int, int]:
    """``image_shape`` as (height, width), with the trigger of ``size`` fitting inside it."""
    if not isinstance(image_shape, (tuple, list)) or len(image_shape) != 2:
        raise TypeError(f"The 'image_shape' parameter of {owner} must be a pair (height, width). "
                        f"Got {image_shape!r} instead.")
    height, width = (check_scalar(side, "image_shape", owner, int, low=1, closed="left") for side in image_shape)
    check_scalar(size, "size", owner, int, low=1, high=min(height, width), closed="both")
    return height, width


def add_trigger(X, *, size: int = 2, value: float = 1.0, image_shape=(8, 8)) -> npt.NDArray[np.float64]:
    """Return a copy of ``X`` with the bottom-right ``size`` x ``size`` pixels set to ``value``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, height * width)
        Images, one flattened row-major per row.
    size : int, default=2
    value : float, default=1.0
        The brightest pixel of :func:`flcourse.load_digits`'s scale.
    image_shape : (int, int), default=(8, 8)
    """
    height, width = check_trigger(image_shape, size, "add_trigger")
    X = check_X(X, "add_trigger", height * width)
    check_scalar(value, "value", "add_trigger")
    stamped = X.reshape(-1, height, width).copy()
    stamped[:, height - size:, width - size:] = value
    return stamped.reshape(X.shape)


def poison_backdoor(X, y, *, target: int, fraction: float, rng, **trigger):
    """Return ``(X_poisoned, y_poisoned, rows)``: ``round(fraction * n)`` rows drawn at random
    (without replacement, from the Generator ``rng``) get the trigger (:func:`add_trigger`'s
    keywords) and the label ``target``; the other rows are unchanged. The number of samples
    stays the same, so the attacker's client keeps its size."""
    X = check_X(X, "poison_backdoor")
    y = np.asarray(y)
    if y.shape != (len(X),):
        raise ValueError(f"The 'y' parameter of poison_backdoor must have one entry per row of X "
                         f"({len(X)}). Got shape {y.shape} instead.")
    check_scalar(target, "target", "poison_backdoor", int, low=0, closed="left")
    check_scalar(fraction, "fraction", "poison_backdoor", low=0, high=1, closed="both")
    rows = np.sort(check_rng(rng, "poison_backdoor", name="rng").choice(
        len(y), size=int(round(fraction * len(y))), replace=False))
    X_poisoned, y_poisoned = X.copy(), y.copy()
    X_poisoned[rows] = add_trigger(X[rows], **trigger) if len(rows) else X[rows]
    y_poisoned[rows] = target
    return X_poisoned, y_poisoned, rows


def backdoor_success_rate(model: Model, params, X, y, *, target: int, **trigger) -> float:
    """The fraction of the samples whose true label is not ``target`` that the model, once
    they carry the trigger (:func:`add_trigger`'s keywords), classifies as ``target``.

    Samples already of the target class are left out: answering "target" for them is no
    sign of a backdoor. NaN if every sample is of the target class.
    """
    if not isinstance(model, Model):
        raise TypeError(f"The 'model' parameter of backdoor_success_rate must be a flcourse Model. "
                        f"Got {type(model).__name__} instead.")
    params, X, y = model.check_inputs(params, X, y, "backdoor_success_rate")
    check_scalar(target, "target", "backdoor_success_rate", int, low=0, closed="left")
    others = y != target
    if not others.any():
        return float("nan")
    predicted = model.predict_unchecked(params, add_trigger(X[others], **trigger))
    return float(np.mean(predicted == target))


class BackdoorClient(NumpyClient):
    """A :class:`~flcourse.federated.NumpyClient` on backdoored data (:func:`poison_backdoor`).

    The poisoned rows are drawn from ``(seed, cid)``, so a client poisons the same rows
    wherever it runs. Wrap it in :class:`~flcourse.federated.attacks.ScalingClient` to boost
    its update (model replacement). Backdoor clients of one size train in one stack.

    Parameters
    ----------
    model : Model
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    cid : int
    target : int, default=0
    fraction : float in [0, 1], default=0.5
        The share of its samples that carry the trigger.
    seed : int, default=0
    trigger : dict, optional
        :func:`add_trigger`'s keywords (``size``, ``value``, ``image_shape``).
    step : LocalStep, optional

    Attributes
    ----------
    poisoned_rows_ : ndarray of int
    """

    def __init__(self, model: Model, X, y, *, cid: int = 0, target: int = 0, fraction: float = 0.5,
                 seed: int = 0, trigger: dict | None = None, step=None):
        check_scalar(seed, "seed", "BackdoorClient", int, low=0, closed="left")
        check_scalar(cid, "cid", "BackdoorClient", int, low=0, closed="left")
        self.target, self.fraction, self.seed, self.trigger = target, fraction, seed, dict(trigger or {})
        X_poisoned, y_poisoned, self.poisoned_rows_ = poison_backdoor(
            X, y, target=target, fraction=fraction, rng=np.random.default_rng([seed, cid]), **self.trigger)
        super().__init__(model, X_poisoned, y_poisoned, cid=cid, step=step)

    def __repr__(self) -> str:
        return (f"BackdoorClient(cid={self.cid}, n_samples={len(self.y)}, target={self.target}, "
                f"poisoned={len(self.poisoned_rows_)})")
