"""What a malicious client sends, as pure array functions over updates (deltas).

Every attack here acts on a delta Δ = w_k - w_t, a client's change of the global parameters
w_t (never on the parameters themselves), so that it means the same whether the strategy
asks for parameters or for their change. With f attackers among n clients whose honest
deltas have mean μ, plain averaging returns ((n - f) μ + f a) / n for an attack a:

=================  ==================================  ==========================================
attack             what an attacker sends              the source
=================  ==================================  ==========================================
sign flip          -s Δ                                "bit flipping"; s > (n - f) / f reverses
                                                       the mean
Gaussian noise     N(0, σ² I), or Δ + N(0, σ² I)       Fang et al., USENIX Security 2020 (the
                                                       first: a random vector instead of Δ)
scaling            γ Δ                                 Bagdasaryan et al., AISTATS 2020 (model
                                                       replacement: γ = n / η)
ALIE               μ_j - z σ_j per coordinate          Baruch, Baruch, Goldberg, NeurIPS 2019
IPM                -ε mean of the honest Δ             Xie, Koyejo, Gupta, UAI 2019
label flipping     trains on y -> C - 1 - y            a data-poisoning baseline (e.g. Fang et
                                                       al. 2020, Karimireddy et al. 2022)
=================  ==================================  ==========================================

ALIE and IPM need the honest updates, so they are crafted by an omniscient adversary
(:class:`~flcourse.federated.attacks.Colluding`); the others by each attacker alone
(:mod:`~flcourse.federated.attacks.clients`). See notebook 07.
"""
from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from ..._validation import as_real_array, check_choice, check_finite, check_rng, check_scalar, check_y


def check_updates(updates, owner: str, name: str = "updates") -> np.ndarray:
    """``updates`` as a finite float64 array of shape (n, d) with n >= 1, else raise."""
    updates = as_real_array(updates, name, owner)
    if updates.ndim != 2 or updates.shape[0] == 0:
        raise ValueError(f"The {name!r} parameter of {owner} must be an array of shape (n, d) with "
                         f"n >= 1. Got an array of shape {updates.shape} instead.")
    check_finite(updates, name, owner)
    return updates


def sign_flip(delta, scale: float = 1.0) -> npt.NDArray[np.float64]:
    """Return -s Δ: the honest change, reversed and scaled by s = ``scale`` > 0.

    Against the mean of n updates of which f are flipped, the aggregate is
    ((n - f) - s f) / n times the honest mean (for equal honest updates): s = 1 only slows
    training, s > (n - f) / f turns it into gradient ascent.
    """
    check_scalar(scale, "scale", "sign_flip", low=0)
    return -scale * as_real_array(delta, "delta", "sign_flip")


def gaussian_noise(delta, sigma: float, rng, *, mode: str = "replace") -> npt.NDArray[np.float64]:
    """Return N(0, σ² I) in place of Δ (``mode="replace"``, Fang et al. 2020's Gaussian
    attack), or Δ + N(0, σ² I) (``mode="add"``), drawn from the Generator ``rng``."""
    delta = as_real_array(delta, "delta", "gaussian_noise")
    check_scalar(sigma, "sigma", "gaussian_noise", low=0)
    check_choice(mode, "mode", "gaussian_noise", {"replace", "add"})
    noise = sigma * check_rng(rng, "gaussian_noise", name="rng").standard_normal(delta.shape)
    return noise if mode == "replace" else delta + noise


def scale_update(delta, gamma: float) -> npt.NDArray[np.float64]:
    """Return γ Δ: Bagdasaryan et al. 2020's boosting. With γ = n / η (n clients averaged,
    server learning rate η) one attacker's w_t + γ (X - w_t) replaces the global model by X,
    if the others' changes nearly cancel."""
    check_scalar(gamma, "gamma", "scale_update", low=0)
    return gamma * as_real_array(delta, "delta", "scale_update")


def alie_z(n: int, f: int) -> float:
    """Return ALIE's z = Φ⁻¹((n - f - s) / (n - f)), with s = ⌊n/2 + 1⌋ - f (Baruch et al. 2019).

    s is how many honest clients the attackers must "seduce" to form a majority. z is chosen
    so that, for normally distributed honest values, s of the n - f honest ones lie further
    than zσ from the mean (Φ(z) = (n - f - s) / (n - f)): the f crafted values at distance zσ
    then look no more extreme than those s, and together they are a majority. For n = 50,
    f = 24: s = 2 and z = Φ⁻¹(24 / 26) ≈ 1.43; for n = 25, f = 5: s = 8 and z = Φ⁻¹(0.6) ≈ 0.25.

    Raises
    ------
    ValueError
        If the ratio is not in (0, 1), where Φ⁻¹ is undefined: when the attackers alone are a
        majority (f >= ⌊n/2 + 1⌋, so s <= 0 and the ratio is >= 1), or n <= 2 (the ratio is 0).
        For f = 0, or f = 1 with n even, the ratio is below 1/2 and z is negative: the crafted
        value μ - zσ then lies above the mean. It is returned as the formula gives it.
    """
    check_scalar(n, "n", "alie_z", int, low=1, closed="left")
    check_scalar(f, "f", "alie_z", int, low=0, high=n, closed="left")
    s = math.floor(n / 2 + 1) - f
    ratio = (n - f - s) / (n - f)
    if not 0 < ratio < 1:
        raise ValueError(f"The 'f' parameter of alie_z must leave (n - f - s) / (n - f) in (0, 1), "
                         f"with s = floor(n/2 + 1) - f; for n={n} that needs n >= 3 and f < {n // 2 + 1}. "
                         f"Got f={f} (ratio {ratio:.3g}) instead.")
    return NormalDist().inv_cdf(ratio)


def alie(updates, z: float) -> npt.NDArray[np.float64]:
    """Return μ - z σ, per coordinate, of the rows of ``updates`` (shape (n, d)).

    μ_j and σ_j are the mean and the standard deviation (population: divided by n) of
    coordinate j over the updates the attackers see (Baruch et al. 2019, "A Little Is
    Enough"). Every attacker sends this one vector: close enough to the honest ones to pass
    a median or Krum, shifted the same way in every coordinate.
    """
    updates = check_updates(updates, "alie")
    check_scalar(z, "z", "alie")
    return updates.mean(axis=0) - z * updates.std(axis=0)


def ipm(honest, epsilon: float) -> npt.NDArray[np.float64]:
    """Return -ε times the mean of the honest updates (shape (n, d)): Xie, Koyejo and Gupta's
    inner-product manipulation. The aggregate's inner product with the true direction turns
    negative once it is pulled far enough: against the mean, when ε f > n - f; a small ε
    (close to 0) is built to be chosen by a median or Krum instead."""
    honest = check_updates(honest, "ipm", name="honest")
    check_scalar(epsilon, "epsilon", "ipm", low=0)
    return -epsilon * honest.mean(axis=0)


def flip_labels(y, n_classes: int) -> npt.NDArray[np.int64]:
    """Return C - 1 - y for labels y in [0, C): class 0 becomes C - 1, 1 becomes C - 2, ...

    Every label changes when C is even (on the digits, C = 10: 0 <-> 9, 4 <-> 5); for odd C
    the middle class (C - 1) / 2 stays.
    """
    check_scalar(n_classes, "n_classes", "flip_labels", int, low=2, closed="left")
    y = check_y(y, "flip_labels", len(np.asarray(y).reshape(-1)), n_classes)
    return n_classes - 1 - y
