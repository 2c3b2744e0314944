"""Models: numpy models with analytic gradients over one flat float64 parameter vector.

Everything here knows nothing of training loops or distribution. See notebook 01.
"""
from .base import (MLP, LinearRegression, LogisticRegression, Model, SoftmaxRegression,
                   check_gradient, check_model, cross_entropy_and_grad, minus_labels, one_hot,
                   sigmoid, softmax)

# The classes go by their public path, flcourse.models.<Name>, wherever a class is named by its
# module: in a pickle (what a spawned worker receives), in a checkpoint's identity, in messages.
# That path survives moves inside the package.
for _cls in (Model, LinearRegression, LogisticRegression, SoftmaxRegression, MLP):
    _cls.__module__ = __name__
del _cls

__all__ = ["MLP", "LinearRegression", "LogisticRegression", "Model", "SoftmaxRegression",
           "check_gradient", "check_model", "cross_entropy_and_grad", "minus_labels", "one_hot",
           "sigmoid", "softmax"]
