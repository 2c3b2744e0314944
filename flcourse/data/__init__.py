"""Data: the course's datasets, FedProx's synthetic federation, and ways to split data among clients.

Everything here knows nothing of training or distribution. See notebooks 01 and 02.
"""
from .datasets import Dataset, load_breast_cancer, load_digits, stratified_split
from .partition import (PartitionStats, dirichlet_partition, iid_partition, make_partition,
                        partition_stats, quantity_skew_partition, shard_partition)
from .partition_checks import check_index_partition, check_partition
from .synthetic import make_fedprox_synthetic

__all__ = ["Dataset", "PartitionStats", "check_index_partition", "check_partition",
           "dirichlet_partition", "iid_partition", "load_breast_cancer", "load_digits",
           "make_fedprox_synthetic", "make_partition", "partition_stats", "quantity_skew_partition",
           "shard_partition", "stratified_split"]
