"""FedProx's Synthetic(alpha, beta) federated dataset (Li et al., MLSys 2020), generated offline."""
from __future__ import annotations

import numpy as np

from .._validation import check_bool, check_rng, check_scalar


def make_fedprox_synthetic(alpha: float, beta: float, *, iid: bool = False, n_clients: int = 30,
                           n_features: int = 60, n_classes: int = 10, seed=0):
    """Generate FedProx's Synthetic(alpha, beta) federated dataset (Li et al., MLSys 2020).

    Client k has n_k = int(Lognormal(4, 2)) + 50 samples. Its model is W_k, b_k ~ N(u_k, 1) with
    u_k ~ N(0, alpha); its inputs are x ~ N(v_k, Sigma), v_k ~ N(B_k, 1), B_k ~ N(0, beta),
    Sigma diagonal with Sigma_jj = j^-1.2; labels are y = argmax softmax(x @ W_k + b_k).
    ``alpha`` controls how much the clients' models differ, ``beta`` how much their inputs do.
    With ``iid=True`` every client shares one W, b ~ N(0, 1) and v_k = 0. As in the paper's
    reference generator, alpha and beta are standard deviations (the paper writes N(0, alpha));
    the two readings agree for the usual settings alpha, beta in {0, 1}.

    Parameters
    ----------
    alpha, beta : float
        Finite and >= 0: how much the clients' labelling models and their inputs differ.
    iid : bool, default=False
    n_clients, n_features : int >= 1
    n_classes : int >= 2
    seed : int, Generator or None

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    partition : list of n_clients index arrays into X, y, one per client
    """
    owner = "make_fedprox_synthetic"
    _check_fedprox_args(alpha, beta, iid, n_clients, n_features, n_classes, owner)
    rng = check_rng(seed, owner)
    sizes = rng.lognormal(4, 2, n_clients).astype(int) + 50
    u, B = rng.normal(0, alpha, n_clients), rng.normal(0, beta, n_clients)
    scale = np.arange(1, n_features + 1) ** -0.6  # sqrt of Sigma_jj = j^-1.2
    shared_W, shared_b = rng.normal(0, 1, (n_features, n_classes)), rng.normal(0, 1, n_classes)
    X_parts, y_parts = [], []
    for k in range(n_clients):
        W, b = rng.normal(u[k], 1, (n_features, n_classes)), rng.normal(u[k], 1, n_classes)
        v = np.zeros(n_features) if iid else rng.normal(B[k], 1, n_features)
        if iid:
            W, b = shared_W, shared_b
        X_k = v + scale * rng.normal(size=(sizes[k], n_features))
        X_parts.append(X_k)
        y_parts.append(_fedprox_labels(X_k, W, b, alpha, beta, owner))
    bounds = np.cumsum(np.concatenate([[0], sizes]))
    partition = [np.arange(bounds[k], bounds[k + 1]) for k in range(n_clients)]
    return np.concatenate(X_parts), np.concatenate(y_parts).astype(np.int64), partition


def _check_fedprox_args(alpha, beta, iid, n_clients, n_features, n_classes, owner):
    check_scalar(alpha, "alpha", owner, low=0, closed="left")
    check_scalar(beta, "beta", owner, low=0, closed="left")
    check_bool(iid, "iid", owner)
    for name, value in (("n_clients", n_clients), ("n_features", n_features)):
        check_scalar(value, name, owner, int, low=1, closed="left")
    check_scalar(n_classes, "n_classes", owner, int, low=2, closed="left")


def _fedprox_labels(X_k, W, b, alpha, beta, owner):
    """argmax of the client's logits; raise if alpha or beta were so large that they overflowed."""
    with np.errstate(over="ignore", invalid="ignore"):
        logits = X_k @ W + b
    if not np.isfinite(X_k).all():
        culprit = f"The 'beta' parameter of {owner} must be small enough for the inputs to stay " \
                  f"finite. Got beta={beta!r} instead"
    elif not np.isfinite(logits).all():
        culprit = f"The 'alpha' and 'beta' parameters of {owner} must be small enough for the " \
                  f"logits to stay finite. Got alpha={alpha!r}, beta={beta!r} instead"
    else:
        return np.argmax(logits, axis=1)
    raise ValueError(f"{culprit} (the paper uses values from 0 to 1).")
