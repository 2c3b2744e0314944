"""Optimisation: minibatches, stochastic and full-batch gradient descent, and what they record.

- :mod:`~flcourse.optim.sgd`: :func:`minibatches`, :func:`sgd`, :func:`gradient_descent`;
- :mod:`~flcourse.optim.monitoring`: the history every training loop keeps, the divergence
  check, the checked test set.

Server-side optimisers (momentum, Adam, Yogi) will live here too. See notebook 01.
"""
from .monitoring import check_eval_set, check_finite, record
from .sgd import epoch_batches, gradient_descent, minibatches, sgd

__all__ = ["check_eval_set", "check_finite", "epoch_batches", "gradient_descent", "minibatches",
           "record", "sgd"]
