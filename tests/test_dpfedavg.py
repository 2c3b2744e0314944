"""DP-FedAvg: clipping bounds every update, the noise has the documented spread, without noise
it is the plain mean of the changes, adaptive clipping moves C the right way, and clients are
Poisson-sampled. (Resume bit for bit: tests/test_contract.py.)"""
import math

import numpy as np
import pytest

import flcourse as fl
from flcourse.federated import Server, make_clients
from flcourse.federated.messages import Update
from flcourse.federated.strategies.dpfedavg import DPFedAvg, clip_by_norm


def one_round(strategy, params, deltas, server_round=1, seed=0):
    """Configure with ``seed``, answer every sampled client with its row of ``deltas``, aggregate."""
    config = strategy.configure_fit(server_round, params, list(range(len(deltas))), np.random.default_rng(seed))
    results = [Update(cid, np.asarray(deltas[cid], dtype=float), 1, {}, {}) for cid in config]
    return strategy.aggregate_fit(server_round, params, results, [])


@pytest.mark.parametrize("norm", [0.0, 1e-300, 1e-12, 0.5, 1.0, 1.0 + 1e-12, 3.0, 1e12, 1e300])
def test_clipping_bounds_every_update(norm):
    rng = np.random.default_rng(1)
    for shape in [(), (1,), (7,)]:
        direction = rng.normal(size=shape)
        delta = direction * (norm / np.linalg.norm(np.ravel(direction)))
        clipped, whole = clip_by_norm(delta, 1.0)
        assert clipped.shape == np.shape(delta)
        assert np.linalg.norm(np.ravel(clipped)) <= 1.0 * (1 + 1e-12) and np.all(np.isfinite(clipped))
        assert whole == (norm <= 1.0)
        if whole:  # a short (tiny, zero) change is left exactly as it is
            assert np.array_equal(clipped, delta)
        else:      # a long one keeps its direction and gets norm C
            assert np.allclose(clipped * (norm / 1.0), delta, rtol=1e-12, atol=0)
            assert abs(np.linalg.norm(np.ravel(clipped)) - 1.0) < 1e-12


def test_the_aggregate_of_one_long_and_one_zero_change_is_bounded_by_c():
    strategy = DPFedAvg(noise_multiplier=0.0, clip_norm=0.3)
    strategy.initialize(np.zeros(5))
    new, metrics = one_round(strategy, np.zeros(5), [np.full(5, 100.0), np.zeros(5)])
    assert np.allclose(new, np.full(5, 0.3 / math.sqrt(5)) / 2, rtol=1e-12, atol=0)
    assert metrics["fraction_unclipped"] == 0.5 and metrics["n_sampled"] == 2


def test_the_noise_has_standard_deviation_z_c_lr_over_qn():
    # 20 clients whose changes are zero, q = 0.25 so qN = 5, d = 2000 coordinates, 10 rounds:
    # n = 20000 draws; the sample std's relative spread is 1 / sqrt(2 n) = 0.5%, so 3% is 6 sigma.
    z, C, lr, q, n_clients, d = 1.3, 0.7, 0.5, 0.25, 20, 2000
    strategy = DPFedAvg(sampling_rate=q, clip_norm=C, noise_multiplier=z, server_lr=lr)
    strategy.initialize(np.zeros(d))
    draws = np.concatenate([one_round(strategy, np.zeros(d), np.zeros((n_clients, d)), r, seed=r)[0]
                            for r in range(10)])
    expected = z * C * lr / (q * n_clients)
    assert abs(draws.std() / expected - 1) < 0.03
    assert abs(draws.mean()) < 4 * expected / math.sqrt(draws.size)


def test_without_noise_and_with_everyone_it_is_the_plain_mean_of_the_changes():
    rng = np.random.default_rng(3)
    params, deltas = rng.normal(size=9), rng.normal(size=(6, 9)) * 0.1  # every norm below C = 5
    strategy = DPFedAvg(sampling_rate=1.0, noise_multiplier=0.0, clip_norm=5.0, server_lr=0.7)
    strategy.initialize(params)
    new, metrics = one_round(strategy, params, deltas)
    mean = np.zeros(9)
    for row in deltas:
        mean += row / len(deltas)
    assert np.max(np.abs(new - (params + 0.7 * mean))) < 1e-12
    assert metrics["fraction_unclipped"] == 1.0 and metrics["clip_norm"] == 5.0


def adaptive_path(clip_norm, rounds=60, n_clients=20, gamma=0.5):
    """C over the rounds when every change has norm 1."""
    strategy = DPFedAvg(clip_norm=clip_norm, noise_multiplier=0.0, target_quantile=gamma, clip_lr=0.2)
    strategy.initialize(np.zeros(4))
    deltas, path = np.tile([0.5, 0.5, 0.5, 0.5], (n_clients, 1)), [clip_norm]
    for r in range(1, rounds + 1):
        path.append(one_round(strategy, np.zeros(4), deltas, r, seed=r)[1]["next_clip_norm"])
    return np.array(path)


def flower_direction_path(clip_norm, rounds=60, gamma=0.5, eta=0.2):
    """The wrong rule, noise-free: the bit counts the changes that were clipped."""
    path = [clip_norm]
    for _ in range(rounds):
        clipped_fraction = float(1.0 > path[-1])
        path.append(path[-1] * math.exp(-eta * (clipped_fraction - gamma)))
    return np.array(path)


def moves_to_one(path):
    """C goes monotonically to the norms' median, 1.0, and then stays near it."""
    first = int(np.argmax((path >= 1.0) if path[0] < 1 else (path <= 1.0)))
    steps = np.diff(path[:first + 1])
    return bool(first > 0 and (np.all(steps > 0) if path[0] < 1 else np.all(steps < 0))
                and np.all(np.abs(np.log(path[first:])) < 0.25))


@pytest.mark.parametrize("start", [0.1, 10.0])
def test_adaptive_clipping_moves_c_towards_the_target_quantile(start):
    path = adaptive_path(start)
    assert moves_to_one(path)
    # the first step is log C' - log C = -eta (b - gamma) = +-0.1, b's noise sigma_b/(qN) = 0.05
    # giving the step a spread of 0.01: 0.03 is 3 sigma
    assert abs(math.log(path[1] / path[0]) - (0.1 if start < 1 else -0.1)) < 0.03
    assert not moves_to_one(flower_direction_path(start))  # the bug would fail this test
    assert flower_direction_path(0.1)[30] < 0.01           # the 0.005 after 30 rounds


def test_clients_are_poisson_sampled_and_an_empty_round_still_adds_noise():
    strategy, rng = DPFedAvg(sampling_rate=0.2), np.random.default_rng(5)
    strategy.initialize(np.zeros(1))
    counts = np.array([len(strategy.configure_fit(r, np.zeros(1), list(range(50)), rng)) for r in range(400)])
    # mean qN = 10 with std sqrt(50 * 0.2 * 0.8 / 400) = 0.14: 4 sigma is 0.57; variance Nq(1-q) = 8
    assert abs(counts.mean() - 10) < 0.57 and 5 < counts.var() < 12
    X, y, partition = fl.make_fedprox_synthetic(1.0, 1.0, n_clients=4, n_features=3, n_classes=2, seed=0)
    model = fl.SoftmaxRegression(n_features=3, n_classes=2)
    server = Server(model, DPFedAvg(sampling_rate=0.1, noise_multiplier=1.0), make_clients(model, X, y, partition),
                    seed=0, test_set=(X, y))
    history = server.run(8).history_
    empty = [r for r, m in enumerate(history["strategy_metrics"]) if m.get("n_sampled") == 0]
    assert empty and all(history["strategy_metrics"][r]["fraction_unclipped"] is None for r in empty)
    assert all(history["test_loss"][r] != history["test_loss"][r - 1] for r in empty)  # the noise moved w


@pytest.mark.parametrize("gamma", [0.25, 0.5, 0.9])
def test_adaptive_clipping_leaves_a_fraction_gamma_unclipped(gamma):
    # norms 1, 2, ..., 20: C settles where gamma N of them are unclipped (0.25 -> 5 <= C < 6)
    strategy = DPFedAvg(clip_norm=1.0, noise_multiplier=0.0, target_quantile=gamma, clip_lr=0.2)
    strategy.initialize(np.zeros(1))
    deltas = np.arange(1, 21, dtype=float)[:, None]
    metrics = [one_round(strategy, np.zeros(1), deltas, r, seed=r)[1] for r in range(1, 301)]
    fractions = [m["fraction_unclipped"] for m in metrics[-100:]]
    clip_norms = [m["clip_norm"] for m in metrics[-100:]]
    assert abs(np.mean(fractions) - gamma) < 0.03
    assert abs(np.median(clip_norms) - gamma * 20) < 1.0
