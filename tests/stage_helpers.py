"""Clients and a strategy for tests of multi-stage rounds (importable by spawned processes)."""
from __future__ import annotations

import os

import numpy as np

from flcourse.federated import FedAvg, NumpyClient, check_fit_res
from flcourse.federated.secagg_client import SecAggClient


class CountingClient(NumpyClient):
    """A NumpyClient that also answers ``count``: how many samples of each label it holds."""

    def count(self, n_classes):
        return np.bincount(self.y, minlength=n_classes).astype(np.float64)


class BrokenEvaluateClient(NumpyClient):
    """A NumpyClient whose ``evaluate`` always raises."""

    def evaluate(self, params, config):
        raise RuntimeError("this client cannot evaluate")


class LabelBalancedFedAvg(FedAvg):
    """A two-stage toy round. Stage 1 asks every selected client for its label counts; stage 2
    gives each its own learning rate, lr / (the number of labels it holds), and averages as
    FedAvg does."""

    def __init__(self, *, n_classes: int = 10, fraction_fit: float = 1.0, local_epochs: int = 1,
                 batch_size=None, lr: float = 0.1):
        super().__init__(fraction_fit=fraction_fit, local_epochs=local_epochs, batch_size=batch_size, lr=lr)
        self.n_classes = n_classes

    def run_round(self, server_round, params, cids, rng, grid):
        instructions = self.configure_fit(server_round, params, cids, rng)
        counts = grid.send("count", {cid: (self.n_classes,) for cid in instructions}, check_counts)
        personal = {cid: {**instructions[cid], "lr": self.lr / np.count_nonzero(counts[cid])}
                    for cid in counts}
        results, failures = grid.fit(params, personal)
        if not results:
            return params, {}
        new, _ = self.aggregate_fit(server_round, params, results, failures)
        return new, {"stage_one_clients": len(counts)}


def check_counts(cid, reply):
    if type(reply) is not np.ndarray or reply.ndim != 1 or not np.all(np.isfinite(reply)) or reply.sum() <= 0:
        raise ValueError(f"client {cid} sent bad label counts")
    return reply


class DroppingSecAggClient(SecAggClient):
    """A SecAggClient that stops answering at stage ``drop_at`` of round ``in_round`` (and after):
    ``"advertise"``, ``"share_keys"``, ``"masked_fit"`` or ``"unmask"``. ``how="exit"`` kills its
    process there instead of raising (process clients only)."""

    STAGES = ("advertise", "share_keys", "masked_fit", "unmask")

    def __init__(self, client, drop_at: str, in_round: int = 1, how: str = "raise"):
        super().__init__(client)
        self.drop_at, self.in_round, self.how = drop_at, in_round, how

    def _drop(self, stage, server_round):
        if int(server_round) >= self.in_round and self.STAGES.index(stage) >= self.STAGES.index(self.drop_at):
            if self.how == "exit":
                os._exit(3)
            raise ConnectionError(f"client {self.cid} went offline at the {stage} stage")

    def secagg_advertise(self, server_round):
        self._drop("advertise", server_round)
        return super().secagg_advertise(server_round)

    def secagg_share_keys(self, server_round, *args):
        self._drop("share_keys", server_round)
        return super().secagg_share_keys(server_round, *args)

    def secagg_masked_fit(self, server_round, *args):
        self._drop("masked_fit", server_round)
        return super().secagg_masked_fit(server_round, *args)

    def secagg_unmask(self, server_round, *args):
        self._drop("unmask", server_round)
        return super().secagg_unmask(server_round, *args)


__all__ = ["BrokenEvaluateClient", "CountingClient", "DroppingSecAggClient", "LabelBalancedFedAvg", "check_counts",
           "check_fit_res"]
