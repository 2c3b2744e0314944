"""Krum, Multi-Krum and Bulyan as strategies: robust rules that select whole updates.

Each round's metrics list the clients whose changes were selected (``selected_cids``; with
bucketing, every client of a selected bucket). The rules bound the attacker budget f by the
number of rows m they combine (the clients that answered, or their ceil(m / s) buckets): Krum
needs 2f + 2 < m, Bulyan m >= 4f + 3; a round with too few rows fails with a ValueError that
says so. See notebook 07.
"""
from __future__ import annotations

from ..._validation import Interval
from ..defences import bulyan, multi_krum
from .robust import ROBUST_CONSTRAINTS, RobustFedAvg

BYZANTINE = Interval(int, 0, None, closed="left")


class Krum(RobustFedAvg):
    """Krum, or Multi-Krum with ``n_selected`` > 1 (Blanchard et al. 2017; Flower's ``Krum``).

    Parameters
    ----------
    n_byzantine : int >= 0, default=0
        f, the number of Byzantine clients (buckets) to resist.
    n_selected : int >= 1, default=1
        m, how many of the lowest-scored changes to average: 1 is Krum; at most the number of rows.
    fraction_fit, local_epochs, batch_size, lr, server_lr, bucket_size
        As for :class:`~flcourse.federated.strategies.robust.RobustFedAvg`.
    """

    parameter_constraints = {**ROBUST_CONSTRAINTS, "n_byzantine": BYZANTINE,
                             "n_selected": Interval(int, 1, None, closed="left")}

    def __init__(self, *, n_byzantine: int = 0, n_selected: int = 1, fraction_fit: float = 1.0,
                 local_epochs: int = 1, batch_size=None, lr: float = 0.1, server_lr: float = 1.0,
                 bucket_size: int = 1):
        super().__init__(fraction_fit=fraction_fit, local_epochs=local_epochs, batch_size=batch_size,
                         lr=lr, server_lr=server_lr, bucket_size=bucket_size)
        self.n_byzantine, self.n_selected = n_byzantine, n_selected

    def defend(self, updates):
        aggregate, selected = multi_krum(updates, self.n_byzantine, self.n_selected, return_selected=True)
        return aggregate, {"selected": selected.tolist()}


class Bulyan(RobustFedAvg):
    """Bulyan (El Mhamdi et al. 2018; Flower's ``Bulyan``): theta = m - 2f changes selected by
    repeated Krum, then per coordinate the mean of the theta - 2f closest to their median.

    Parameters
    ----------
    n_byzantine : int >= 0, default=0
        f, with m >= 4f + 3 rows each round.
    fraction_fit, local_epochs, batch_size, lr, server_lr, bucket_size
        As for :class:`~flcourse.federated.strategies.robust.RobustFedAvg`.
    """

    parameter_constraints = {**ROBUST_CONSTRAINTS, "n_byzantine": BYZANTINE}

    def __init__(self, *, n_byzantine: int = 0, fraction_fit: float = 1.0, local_epochs: int = 1,
                 batch_size=None, lr: float = 0.1, server_lr: float = 1.0, bucket_size: int = 1):
        super().__init__(fraction_fit=fraction_fit, local_epochs=local_epochs, batch_size=batch_size,
                         lr=lr, server_lr=server_lr, bucket_size=bucket_size)
        self.n_byzantine = n_byzantine

    def defend(self, updates):
        aggregate, selected = bulyan(updates, self.n_byzantine, return_selected=True)
        return aggregate, {"selected": selected.tolist()}
