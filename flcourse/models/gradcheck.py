"""The reference every model's gradient is held to: central finite differences of its loss.

See notebook 01.
"""
from __future__ import annotations

import numpy as np

from .._validation import check_scalar
from .base import Model, check_model


def check_gradient(model: Model, params, X, y, eps: float = 1e-6) -> float:
    """Return the relative error between ``model``'s analytic gradient and central finite differences.

    The error is ||g - g_fd|| / max(||g|| + ||g_fd||, 1e-12); below 1e-6 means the analytic
    gradient is right. Costs two loss evaluations per parameter. See notebook 01.

    Parameters
    ----------
    model : Model
        Its kernel :meth:`~flcourse.models.Model.loss_grad` gives both sides: the analytic
        gradient, and the losses the finite differences are taken of.
    params : array-like of shape (n_params,)
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    eps : float, default=1e-6
        The step of the finite differences, > 0.

    Returns
    -------
    error : float
    """
    params, X, y = check_model(model, "check_gradient").check_inputs(params, X, y, "check_gradient")
    check_scalar(eps, "eps", "check_gradient", low=0, closed="neither")
    analytic = model.loss_grad(params, X, y)[1]
    numeric = np.empty_like(params)
    for j in range(params.size):
        step = np.zeros_like(params)
        step[j] = eps
        numeric[j] = (model.loss_grad(params + step, X, y, False)[0]
                      - model.loss_grad(params - step, X, y, False)[0]) / (2 * eps)
    return float(np.linalg.norm(analytic - numeric)
                 / max(np.linalg.norm(analytic) + np.linalg.norm(numeric), 1e-12))
