"""Models: numpy models with analytic gradients over one flat float64 parameter vector.

- :mod:`~flcourse.models.base`: :class:`Model`, the checked API over public kernels
  (``loss_grad``, ``grad_unchecked``, ``grad_stacked``, ``predict_unchecked``, ``weights_mask``);
- :mod:`~flcourse.models.functions`: sigmoid, softmax, one-hot labels, cross-entropy;
- :mod:`~flcourse.models.linear`: linear, logistic and softmax regression;
- :mod:`~flcourse.models.mlp`: a one-hidden-layer perceptron;
- :mod:`~flcourse.models.gradcheck`: gradients against finite differences.

Models know nothing of training loops or distribution. See notebook 01.
"""
from .base import Model, check_model
from .functions import (cross_entropy_and_grad, minus_labels, one_hot, sigmoid, softmax,
                        softmax_unchecked)
from .gradcheck import check_gradient
from .linear import LinearRegression, LogisticRegression, SoftmaxRegression
from .mlp import MLP

# The classes go by their public path, flcourse.models.<Name>, wherever a class is named by its
# module: in a pickle (what a spawned worker receives), in a checkpoint's identity, in messages.
# That path survives moves inside the package. The cost: inspect.getsource(SoftmaxRegression),
# and IPython's SoftmaxRegression??, look for the class in this file and fail; the source is in
# the submodule named in this docstring.
for _cls in (Model, LinearRegression, LogisticRegression, SoftmaxRegression, MLP):
    _cls.__module__ = __name__
del _cls

__all__ = ["MLP", "LinearRegression", "LogisticRegression", "Model", "SoftmaxRegression",
           "check_gradient", "check_model", "cross_entropy_and_grad", "minus_labels", "one_hot",
           "sigmoid", "softmax", "softmax_unchecked"]
