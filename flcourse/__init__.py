"""flcourse: the package behind a notebook course on distributed and federated learning.

The notebooks build each piece in the open, then import the tested version from here.
"""
from .federated.aggregators import weighted_average
from .data import Dataset, load_breast_cancer, load_digits, make_fedprox_synthetic
from .models import (MLP, LinearRegression, LogisticRegression, Model, SoftmaxRegression,
                     check_gradient, one_hot, sigmoid, softmax)
from .optim import gradient_descent, minibatches, sgd
from .data import (PartitionStats, check_partition, dirichlet_partition, iid_partition,
                   make_partition, partition_stats, quantity_skew_partition, shard_partition)

__version__ = "0.1.0"


def __getattr__(name):
    """``fl.plot`` on first use: matplotlib is slow to import, and workers never need it."""
    if name == "plot":
        import importlib

        return importlib.import_module(".plot", __name__)
    raise AttributeError(f"module 'flcourse' has no attribute {name!r}")

__all__ = [
    "Dataset", "LinearRegression", "plot", "LogisticRegression", "MLP", "Model", "PartitionStats",
    "SoftmaxRegression", "check_gradient", "check_partition", "dirichlet_partition",
    "gradient_descent", "iid_partition", "load_breast_cancer", "load_digits",
    "make_fedprox_synthetic", "make_partition", "minibatches", "one_hot", "partition_stats",
    "quantity_skew_partition", "sgd", "shard_partition", "sigmoid", "softmax", "weighted_average",
]
