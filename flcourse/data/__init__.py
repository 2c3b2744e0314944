"""Data: the course's datasets, FedProx's synthetic federation, and ways to split data among clients.

Everything here knows nothing of training or distribution. Missing values and their imputation: notebook 07. See notebooks 01 and 02.
"""
from .datasets import Dataset, load_breast_cancer, load_digits, stratified_split
from .missing import (IMPUTATIONS, aggregate_means, centralised_mean_impute, client_sums_and_counts,
                      drop_incomplete_rows, federated_mean_impute, fill_missing, local_mean_impute,
                      missing_at_random, missing_not_at_random, unrecorded_columns)
from .partition import (PartitionStats, dirichlet_partition, iid_partition, make_partition,
                        partition_stats, quantity_skew_partition, shard_partition)
from .partition_checks import check_index_partition, check_partition
from .synthetic import make_fedprox_synthetic

__all__ = ["IMPUTATIONS", "Dataset", "PartitionStats", "aggregate_means", "centralised_mean_impute",
           "check_index_partition", "check_partition", "client_sums_and_counts", "dirichlet_partition",
           "drop_incomplete_rows", "federated_mean_impute", "fill_missing", "iid_partition",
           "load_breast_cancer", "load_digits", "local_mean_impute", "make_fedprox_synthetic",
           "make_partition", "missing_at_random", "missing_not_at_random", "partition_stats",
           "quantity_skew_partition", "shard_partition", "stratified_split", "unrecorded_columns"]
