"""The robust strategies against an independent plain loop written here (median, trimmed mean,
Krum, Bulyan, bucketing: <= 1e-12); with no attacker and a rule that is the mean, FedAvg itself;
unweighted; resumed bit for bit with bucketing and centered clipping's state; a clear error
when a round has too few updates for the rule."""
import math
import statistics

import numpy as np
import pytest

import flcourse as fl
from flcourse.federated import FedAvg, FitRes, NumpyClient, Server, make_clients
from flcourse.federated.strategies.robust import (CenteredClipping, FedMedian, FedTrimmedAvg, GeometricMedian,
                                                  NormBounding, RobustFedAvg)
from flcourse.federated.strategies.robust_krum import Bulyan, Krum

N_CLIENTS, ATTACKER = 8, 0
SETTINGS = dict(fraction_fit=0.75, local_epochs=2, batch_size=10, lr=0.05)


@pytest.fixture(scope="module")
def federation():
    X, y, partition = fl.make_fedprox_synthetic(1.0, 1.0, n_clients=N_CLIENTS, n_features=10, n_classes=4, seed=3)
    partition = [part[:60] for part in partition]  # 50 to 60 samples each: quick rounds
    return fl.SoftmaxRegression(n_features=10, n_classes=4), X, y, partition


class SignFlipper(NumpyClient):
    """Sends -10 times its honest change."""

    def fit(self, params, config):
        honest = super().fit(params, config)
        return FitRes(-10.0 * honest.params, honest.n_examples, honest.metrics)


class OneExampleClaimer(NumpyClient):
    """Claims a single example, whatever it trained on."""

    def fit(self, params, config):
        honest = super().fit(params, config)
        return FitRes(honest.params, 1, honest.metrics)


def clients_with(federation, cls, cids=(ATTACKER,)):
    model, X, y, partition = federation
    return [(cls if k in cids else NumpyClient)(model, X[p], y[p], cid=k) for k, p in enumerate(partition)]


# --- the plain loop ----------------------------------------------------------------------------

def plain_local_sgd(model, w, X, y, seed, cid, epochs, batch, lr):
    rng, n = np.random.default_rng([seed, cid]), len(y)
    for _ in range(epochs):
        order = rng.permutation(n)
        for first in range(0, n, batch):
            rows = order[first:first + batch]
            w = w - lr * model.grad(w, X[rows], y[rows])
    return w


def plain_median(rows):
    return [statistics.median(column) for column in zip(*rows)]


def plain_trimmed(rows, beta):
    k = math.floor(beta * len(rows))
    return [sum(sorted(c)[k:len(c) - k]) / (len(c) - 2 * k) for c in zip(*rows)]


def plain_mean(rows):
    return [sum(column) / len(column) for column in zip(*rows)]


def plain_krum(rows, f):
    """(the row of lowest score, its position); ties to the lowest position."""
    def score(i):
        return sum(sorted(sum((a - b) ** 2 for a, b in zip(rows[i], other))
                          for j, other in enumerate(rows) if j != i)[:len(rows) - f - 2])
    best = min(range(len(rows)), key=lambda i: (score(i), i))
    return rows[best], best


def plain_robust(model, X, y, partition, rule, *, rounds, server_lr=1.0, bucket_size=1, attacker=False, seed=5):
    """Rounds of: seed and sample as every strategy draws them, local SGD, changes, (buckets), rule."""
    rng, x, picked = np.random.default_rng(seed), model.init_params(), []
    for _ in range(rounds):
        round_seed = int(rng.integers(2**63))
        m = max(1, int(round(SETTINGS["fraction_fit"] * len(partition))))
        cids = sorted(rng.choice(len(partition), size=m, replace=False).tolist())
        rows = []
        for cid in cids:
            part = partition[cid]
            new = plain_local_sgd(model, x, X[part], y[part], round_seed, cid, SETTINGS["local_epochs"],
                                  SETTINGS["batch_size"], SETTINGS["lr"])
            rows.append(list((-10.0 if attacker and cid == ATTACKER else 1.0) * (new - x)))
        groups = [[cid] for cid in cids]
        if bucket_size > 1:
            order = np.random.default_rng([round_seed, 1]).permutation(len(rows)).tolist()
            groups = [[cids[k] for k in order[s:s + bucket_size]] for s in range(0, len(rows), bucket_size)]
            rows = [plain_mean([rows[k] for k in order[s:s + bucket_size]]) for s in range(0, len(rows), bucket_size)]
        aggregate, position = rule(rows)
        picked.append(None if position is None else sorted(groups[position]))
        x = x + server_lr * np.array(aggregate)
    return x, picked


def run(federation, strategy, rounds, clients=None, **kwargs):
    model, X, y, partition = federation
    clients = make_clients(model, X, y, partition) if clients is None else clients
    return Server(model, strategy, clients, seed=5, **kwargs).run(rounds)


# --- tests ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("strategy, rule, bucket_size", [
    (FedMedian(**SETTINGS, server_lr=0.8), lambda rows: (plain_median(rows), None), 1),
    (FedTrimmedAvg(beta=0.2, **SETTINGS), lambda rows: (plain_trimmed(rows, 0.2), None), 1),
    (Krum(n_byzantine=1, **SETTINGS), lambda rows: plain_krum(rows, 1), 1),
    (FedMedian(bucket_size=2, **SETTINGS), lambda rows: (plain_median(rows), None), 2),
    (Krum(n_byzantine=0, bucket_size=2, **SETTINGS), lambda rows: plain_krum(rows, 0), 2),
    (RobustFedAvg(bucket_size=4, **SETTINGS), lambda rows: (plain_mean(rows), None), 4),
], ids=["median", "trimmed", "krum", "median-buckets-2", "krum-buckets-2", "mean-buckets-4"])
def test_each_rule_equals_a_plain_loop_under_a_sign_flipping_client(federation, strategy, rule, bucket_size):
    server = run(federation, strategy, 4, clients_with(federation, SignFlipper))
    expected, picked = plain_robust(*federation, rule, rounds=4, server_lr=strategy.server_lr,
                                    bucket_size=bucket_size, attacker=True)

    np.testing.assert_allclose(server.params_, expected, rtol=0, atol=1e-12)
    if isinstance(strategy, Krum):
        assert [row["selected_cids"] for row in server.history_["strategy_metrics"][1:]] == picked
        if bucket_size == 1:
            assert all(ATTACKER not in cids for cids in picked)


def test_bulyan_equals_a_plain_loop_of_the_mean_of_the_closest_to_the_median(federation):
    # 6 of 8 clients a round; Bulyan with f = 0 keeps all six, and beta = theta: it is the mean
    server = run(federation, Bulyan(n_byzantine=0, **SETTINGS), 3)
    expected, _ = plain_robust(*federation, lambda rows: (plain_mean(rows), None), rounds=3)

    np.testing.assert_allclose(server.params_, expected, rtol=0, atol=1e-12)
    assert all(len(row["selected_cids"]) == 6 for row in server.history_["strategy_metrics"][1:])


def equal_sizes(federation):
    model, X, y, _ = federation
    return model, X, y, list(np.arange(N_CLIENTS * 20).reshape(N_CLIENTS, 20))


@pytest.mark.parametrize("strategy", [
    RobustFedAvg(**SETTINGS), RobustFedAvg(bucket_size=2, **SETTINGS), FedTrimmedAvg(beta=0.0, **SETTINGS),
    Krum(n_byzantine=0, n_selected=6, **SETTINGS), Bulyan(n_byzantine=0, **SETTINGS),
    NormBounding(bound=math.inf, **SETTINGS), CenteredClipping(tau=math.inf, **SETTINGS),
], ids=["mean", "mean-buckets", "trimmed-beta-0", "multi-krum-all", "bulyan-f-0", "norm-inf", "cclip-inf"])
def test_with_no_attacker_a_rule_that_is_the_mean_is_fedavg(federation, strategy):
    federation = equal_sizes(federation)

    robust, fedavg = run(federation, strategy, 4), run(federation, FedAvg(**SETTINGS), 4)

    np.testing.assert_allclose(robust.params_, fedavg.params_, rtol=0, atol=1e-12)


def test_the_changes_are_not_weighted_by_the_examples_a_client_claims(federation):
    honest = run(federation, RobustFedAvg(**SETTINGS), 3)
    claiming = run(federation, RobustFedAvg(**SETTINGS), 3, clients_with(federation, OneExampleClaimer, (0, 3, 5)))

    assert np.array_equal(honest.params_, claiming.params_)


@pytest.mark.parametrize("strategy", [
    lambda: CenteredClipping(tau=0.05, n_iter=2, bucket_size=2, **SETTINGS),
    lambda: Krum(n_byzantine=0, n_selected=2, bucket_size=2, **SETTINGS),
    lambda: GeometricMedian(max_iter=5, **SETTINGS),
], ids=["cclip", "krum", "geometric-median"])
def test_a_resumed_run_ends_where_the_whole_run_does(federation, tmp_path, strategy):
    whole = run(federation, strategy(), 4, checkpoint_path=tmp_path / "whole.flc")
    run(federation, strategy(), 2, checkpoint_path=tmp_path / "part.flc")
    resumed = Server(federation[0], strategy(), make_clients(*federation), seed=5,
                     checkpoint_path=tmp_path / "part.flc").run(4, resume=True)

    assert np.array_equal(resumed.params_, whole.params_)
    assert resumed.history_["strategy_metrics"] == whole.history_["strategy_metrics"]
    for key, value in whole.strategy.get_state().items():
        assert np.array_equal(resumed.strategy.get_state()[key], value), key


def test_centered_clipping_starts_each_round_from_the_last_aggregate(federation):
    strategy = CenteredClipping(tau=0.05, **SETTINGS)
    one = run(federation, strategy, 1)
    first_change = one.params_ - federation[0].init_params()

    assert np.allclose(strategy.get_state()["center"], first_change, rtol=0, atol=1e-15)
    assert np.linalg.norm(first_change) <= 0.05 + 1e-12  # from zero, each change moves v by <= tau / m


def test_a_round_with_too_few_updates_for_the_rule_is_a_clear_error(federation):
    with pytest.raises(ValueError, match=r"Krum cannot combine the 3 rows of round 1 \(6 updates, bucket_size=2\): "
                                         r"The 'n_byzantine' parameter of multi_krum must satisfy 2f \+ 2 < n"):
        run(federation, Krum(n_byzantine=1, bucket_size=2, **SETTINGS), 1)
    with pytest.raises(ValueError, match=r"Bulyan cannot combine the 6 rows .*n >= 4f \+ 3"):
        run(federation, Bulyan(n_byzantine=1, **SETTINGS), 1)


def test_every_robust_strategy_asks_for_changes_and_builds_without_arguments(federation):
    for cls in (RobustFedAvg, FedMedian, FedTrimmedAvg, Krum, Bulyan, GeometricMedian, CenteredClipping,
                NormBounding):
        strategy = cls()
        strategy.initialize(np.zeros(3))
        config = strategy.configure_fit(1, np.zeros(3), list(range(4)), np.random.default_rng(0))
        assert all(c["update"] == "delta" for c in config.values()) and strategy.state_["seed"] == \
            next(iter(config.values()))["seed"]
        assert "stragglers" not in strategy.get_params() and repr(strategy).startswith(cls.__name__ + "(")
