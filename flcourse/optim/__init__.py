"""Optimisation: minibatches, stochastic and full-batch gradient descent, and what they record.

See notebook 01.
"""
from .sgd import (check_eval_set, check_finite, epoch_batches, gradient_descent, minibatches,
                  record, sgd)

__all__ = ["check_eval_set", "check_finite", "epoch_batches", "gradient_descent", "minibatches",
           "record", "sgd"]
