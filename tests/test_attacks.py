"""The attacks of chapter 07 against hand-computed numbers and plain loops written here: each
formula, ALIE's z, the client wrappers (delta or parameters), label flipping and the backdoor,
the colluding adversary (replaces only the attackers, resumes bit for bit), and plain FedAvg
broken by sign flip and IPM, but not by ALIE at the paper's z (it moves the mean by (f/n) z sigma)."""
import math

import numpy as np
import pytest

import flcourse as fl
from flcourse.federated import CheckpointError, FedAvg, FedAvgM, NumpyClient, Server, make_clients
from flcourse.federated.attacks import (BackdoorClient, Colluding, GaussianNoiseClient, LabelFlipClient,
                                        ScalingClient, SignFlipClient, add_trigger, alie, alie_z,
                                        backdoor_success_rate, flip_labels, gaussian_noise, ipm,
                                        poison_backdoor, scale_update, sign_flip)
from flcourse.federated.runners import can_train_together
from flcourse.federated.strategies.robust import CenteredClipping

CONFIG = {"local_epochs": 2, "batch_size": 4, "lr": 0.1, "seed": 7}


class DeltaMean(FedAvg):
    """A test strategy that asks for changes and adds their plain mean."""

    def configure_fit(self, server_round, params, cids, rng):
        return {cid: {**config, "update": "delta"} for cid, config in super().configure_fit(
            server_round, params, cids, rng).items()}

    def aggregate_fit(self, server_round, params, results, failures):
        return params + np.mean([u.params for u in results], axis=0), {}


class Recording(FedAvg):
    """FedAvg that keeps the results it was given."""

    def aggregate_fit(self, server_round, params, results, failures):
        self.seen_ = list(results)
        return super().aggregate_fit(server_round, params, results, failures)


@pytest.fixture(scope="module")
def small():
    X, y, partition = fl.make_fedprox_synthetic(1.0, 1.0, n_clients=6, n_features=5, n_classes=3, seed=1)
    return fl.SoftmaxRegression(n_features=5, n_classes=3), X, y, partition


def phi(z):
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def plain_inverse_phi(p):
    low, high = -10.0, 10.0
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if phi(middle) < p else (low, middle)
    return (low + high) / 2


# ---- the formulas ------------------------------------------------------------------------

def test_sign_flip_and_scaling_on_hand_computed_numbers():
    delta = np.array([1.0, -2.0, 0.5])

    assert np.array_equal(sign_flip(delta), [-1.0, 2.0, -0.5])
    assert np.array_equal(sign_flip(delta, 2.0), [-2.0, 4.0, -1.0])
    assert np.array_equal(scale_update(delta, 3.0), [3.0, -6.0, 1.5])


@pytest.mark.parametrize("mode", ["replace", "add"])
def test_gaussian_noise_is_the_generators_normal_draws_times_sigma(mode):
    delta = np.array([1.0, 2.0, 3.0, 4.0])
    draws = np.random.default_rng(5).standard_normal(4)

    noisy = gaussian_noise(delta, 0.5, np.random.default_rng(5), mode=mode)

    expected = [0.5 * draws[j] + (delta[j] if mode == "add" else 0.0) for j in range(4)]
    assert np.allclose(noisy, expected, rtol=0, atol=1e-15)


def test_alie_z_is_the_papers_formula_with_its_example():
    # n = 50, f = 24: s = floor(26) - 24 = 2, Phi(z) = (50 - 24 - 2) / 26 = 24/26, z = 1.426...
    z = alie_z(50, 24)

    assert abs(phi(z) - 24 / 26) < 1e-12 and abs(z - plain_inverse_phi(24 / 26)) < 1e-9
    assert round(z, 3) == 1.426
    assert abs(alie_z(25, 5) - plain_inverse_phi(12 / 20)) < 1e-9  # s = 8: Phi(z) = 0.6, z = 0.253
    assert alie_z(10, 1) < 0 and abs(phi(alie_z(10, 1)) - 4 / 9) < 1e-12  # s = 5: below 1/2


@pytest.mark.parametrize("n, f", [(2, 0), (1, 0), (10, 6), (25, 13)])
def test_alie_z_refuses_a_ratio_outside_zero_one(n, f):
    with pytest.raises(ValueError, match="'f' parameter of alie_z must leave"):
        alie_z(n, f)


def test_alie_and_ipm_on_hand_computed_numbers():
    updates = np.array([[1.0, 2.0], [3.0, 2.0], [5.0, 8.0]])  # mean (3, 4); std sqrt(8/3), sqrt(8)

    assert np.allclose(alie(updates, 1.0), [3 - math.sqrt(8 / 3), 4 - math.sqrt(8)], rtol=0, atol=1e-15)
    assert np.array_equal(ipm(updates[:2], 0.5), [-1.0, -1.0])


def test_alie_against_a_plain_loop_on_random_updates(rng):
    updates, z = rng.normal(size=(7, 5)), 0.8

    crafted = alie(updates, z)

    for j in range(5):
        column = [updates[i, j] for i in range(7)]
        mean = sum(column) / 7
        std = math.sqrt(sum((v - mean) ** 2 for v in column) / 7)
        assert abs(crafted[j] - (mean - z * std)) < 1e-12


def test_flip_labels_maps_c_minus_one_minus_y():
    assert np.array_equal(flip_labels([0, 1, 9, 4], 10), [9, 8, 0, 5])
    assert np.array_equal(flip_labels([0, 1, 2], 3), [2, 1, 0])
    with pytest.raises(ValueError, match="'y' parameter of flip_labels"):
        flip_labels([0, 10], 10)


@pytest.mark.parametrize("call, message", [
    (lambda: sign_flip([1.0], -1), "'scale' parameter of sign_flip"),
    (lambda: gaussian_noise([1.0], 1.0, 0, mode="mix"), "'mode' parameter of gaussian_noise"),
    (lambda: ipm(np.ones(3), 0.1), "'honest' parameter of ipm"),
    (lambda: alie([[np.nan, 1.0]], 1.0), "'updates' parameter of alie"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


# ---- the backdoor ----------------------------------------------------------------------

def test_the_trigger_sets_the_bottom_right_two_by_two_pixels():
    X = np.zeros((2, 64))

    stamped = add_trigger(X)

    assert sorted(np.flatnonzero(stamped[0])) == [54, 55, 62, 63]  # rows 6, 7 x columns 6, 7
    assert np.all(stamped[:, [54, 55, 62, 63]] == 1.0) and not X.any()


def test_poisoning_relabels_and_stamps_the_drawn_rows_only(rng):
    X, y = rng.uniform(0, 0.5, size=(10, 64)), np.arange(10) % 3 + 1

    X_p, y_p, rows = poison_backdoor(X, y, target=0, fraction=0.5, rng=np.random.default_rng(3))

    expected_rows = np.sort(np.random.default_rng(3).choice(10, size=5, replace=False))
    assert np.array_equal(rows, expected_rows)
    for i in range(10):
        assert (y_p[i] == 0) == (i in rows)
        assert np.array_equal(X_p[i], add_trigger(X[i:i + 1])[0] if i in rows else X[i])


def test_backdoor_success_rate_on_a_constructed_model():
    # class 0 wins whenever the trigger is on, unless feature 0 (weight 100 for class 1) is set
    model = fl.SoftmaxRegression(n_features=64, n_classes=5)
    W = np.zeros((64, 5))
    W[[54, 55, 62, 63], 0] = 10.0
    W[0, 1] = 100.0
    params = np.concatenate([W.ravel(), [0.0, 1.0, 0.0, 0.0, 0.0]])
    X, y = np.zeros((5, 64)), np.array([0, 1, 2, 3, 4])
    X[[1, 3], 0] = 1.0  # of the four non-target samples, 1 and 3 resist

    rate = backdoor_success_rate(model, params, X, y, target=0)

    assert rate == 2 / 4
    assert backdoor_success_rate(model, params, X[:1], y[:1], target=0) != rate  # NaN: only targets


def test_a_backdoor_client_trains_on_the_data_poison_backdoor_gives(small, rng):
    model = fl.SoftmaxRegression(n_features=64, n_classes=3)
    X, y = rng.uniform(0, 0.5, size=(12, 64)), rng.integers(0, 3, size=12)

    client = BackdoorClient(model, X, y, cid=4, target=2, fraction=0.25, seed=9)

    X_p, y_p, rows = poison_backdoor(X, y, target=2, fraction=0.25, rng=np.random.default_rng([9, 4]))
    assert np.array_equal(client.X, X_p) and np.array_equal(client.y, y_p) and len(rows) == 3
    assert np.array_equal(client.fit(np.zeros(model.n_params), CONFIG)[0],
                          NumpyClient(model, X_p, y_p, cid=4).fit(np.zeros(model.n_params), CONFIG)[0])


# ---- the clients -------------------------------------------------------------------------

@pytest.mark.parametrize("update", ["delta", "params"])
@pytest.mark.parametrize("make, attack", [
    (lambda c: SignFlipClient(c, scale=3.0), lambda d, seed: -3.0 * d),
    (lambda c: ScalingClient(c, gamma=5.0), lambda d, seed: 5.0 * d),
    (lambda c: GaussianNoiseClient(c, sigma=0.2, seed=11),
     lambda d, seed: 0.2 * np.random.default_rng([11, 2, seed]).standard_normal(d.shape)),
    (lambda c: GaussianNoiseClient(c, sigma=0.2, mode="add", seed=11),
     lambda d, seed: d + 0.2 * np.random.default_rng([11, 2, seed]).standard_normal(d.shape)),
])
def test_a_wrapper_answers_its_attack_of_the_honest_change(small, make, attack, update):
    model, X, y, partition = small
    honest, params = make_clients(model, X, y, partition)[2], np.linspace(-1, 1, model.n_params)
    config = {**CONFIG, **({"update": "delta"} if update == "delta" else {})}
    reply = honest.fit(params.copy(), config)
    delta = reply[0] if update == "delta" else reply[0] - params

    attacked = make(make_clients(model, X, y, partition)[2]).fit(params.copy(), config)

    expected = attack(delta, CONFIG["seed"])
    assert np.allclose(attacked[0], expected if update == "delta" else params + expected, rtol=0, atol=1e-12)
    assert attacked[1] == reply[1] and attacked.extras == reply.extras


def test_a_wrapper_passes_on_the_id_size_state_and_evaluation(small):
    model, X, y, partition = small
    honest = make_clients(model, X, y, partition)[3]
    attacker = SignFlipClient(honest)

    attacker.state = {"memory": np.ones(2)}

    assert (attacker.cid, attacker.n_samples) == (3, honest.n_samples)
    assert honest.state["memory"].sum() == 2
    assert attacker.evaluate(np.zeros(model.n_params), {}) == honest.evaluate(np.zeros(model.n_params), {})
    assert not can_train_together(attacker) and not hasattr(attacker, "X")


def test_gaussian_noise_changes_with_the_round_seed_and_repeats_with_it(small):
    model, X, y, partition = small
    attacker = GaussianNoiseClient(make_clients(model, X, y, partition)[0], sigma=1.0)
    params = np.zeros(model.n_params)

    first, again = attacker.fit(params, CONFIG)[0], attacker.fit(params, CONFIG)[0]
    other = attacker.fit(params, {**CONFIG, "seed": 8})[0]

    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_a_label_flipping_client_trains_on_flipped_labels_in_a_stack(small):
    model, X, y, partition = small
    part = partition[1]

    client = LabelFlipClient(model, X[part], y[part], cid=1)

    assert np.array_equal(client.y, 2 - y[part]) and can_train_together(client)
    assert np.array_equal(client.fit(np.zeros(model.n_params), CONFIG)[0],
                          NumpyClient(model, X[part], 2 - y[part], cid=1).fit(np.zeros(model.n_params), CONFIG)[0])
    with pytest.raises(TypeError, match="'model' parameter of LabelFlipClient must be a classifier"):
        LabelFlipClient(fl.LinearRegression(n_features=5), X[part], y[part])


# ---- collusion -----------------------------------------------------------------------------

def round_results(small, strategy, attackers=(1, 4)):
    """Configure and fit one round of ``strategy`` by hand; return (params, results)."""
    from flcourse.federated.messages import check_fit_res

    model, X, y, partition = small
    clients, params = make_clients(model, X, y, partition), np.linspace(-0.5, 0.5, model.n_params)
    instructions = strategy.configure_fit(1, params, [c.cid for c in clients], np.random.default_rng(0))
    results = [check_fit_res(c.cid, c.fit(params.copy(), instructions[c.cid]), model.n_params) for c in clients]
    return params, results


@pytest.mark.parametrize("inner", [Recording, DeltaMean])
def test_colluding_alie_replaces_the_attackers_with_mu_minus_z_sigma_of_the_honest(small, inner):
    strategy = Colluding(inner(local_epochs=1, batch_size=4, lr=0.1), attackers=[1, 4], attack="alie")
    params, results = round_results(small, strategy)
    as_delta = inner is DeltaMean
    honest = [u.params if as_delta else u.params - params for u in results if u.cid not in (1, 4)]

    crafted, z = strategy.crafted_results(params, results)

    assert z == alie_z(6, 2)
    for j in range(len(params)):
        column = [h[j] for h in honest]
        mean = sum(column) / 4
        target = mean - z * math.sqrt(sum((v - mean) ** 2 for v in column) / 4)
        for u in crafted:
            if u.cid in (1, 4):
                assert abs((u.params[j] if as_delta else u.params[j] - params[j]) - target) < 1e-12
    assert all(u is v for u, v in zip(results, crafted) if u.cid not in (1, 4))


def test_colluding_ipm_is_minus_epsilon_times_the_honest_mean_and_reaches_the_inner_strategy(small):
    strategy = Colluding(Recording(local_epochs=1, batch_size=4, lr=0.1), attackers=[1, 4], attack="ipm",
                         epsilon=0.3)
    params, results = round_results(small, strategy)
    honest = np.stack([u.params - params for u in results if u.cid not in (1, 4)])

    new, metrics = strategy.aggregate_fit(1, params, results, [])

    replaced = {u.cid: u.params for u in strategy.strategy.seen_}
    assert np.array_equal(replaced[1] - params, (params + -0.3 * honest.mean(axis=0)) - params)
    assert np.allclose(replaced[4] - params, [-0.3 * sum(h[j] for h in honest) / 4 for j in range(len(params))],
                       rtol=0, atol=1e-12)
    sizes = {u.cid: u.n_examples for u in results}
    plain = sum(sizes[c] * replaced[c] for c in sizes) / sum(sizes.values())
    assert np.allclose(new, plain, rtol=0, atol=1e-12) and metrics["attackers_replaced"] == [1, 4]


def test_colluding_with_own_knowledge_uses_the_attackers_updates(small):
    strategy = Colluding(Recording(local_epochs=1, batch_size=4, lr=0.1), attackers=[1, 4], attack="ipm",
                         epsilon=1.0, knowledge="attackers")
    params, results = round_results(small, strategy)
    own = np.mean([u.params - params for u in results if u.cid in (1, 4)], axis=0)

    crafted, _ = strategy.crafted_results(params, results)

    assert np.allclose(crafted[1].params - params, -own, rtol=0, atol=1e-12)


@pytest.mark.parametrize("inner", [DeltaMean, FedAvgM, CenteredClipping])  # the last two keep a state
def test_colluding_resumes_bit_for_bit_and_refuses_other_attack_parameters(small, tmp_path, inner):
    model, X, y, partition = small

    def server(path, epsilon=0.5):
        strategy = Colluding(inner(fraction_fit=0.7, local_epochs=1, batch_size=4, lr=0.1),
                             attackers=[0, 3], attack="ipm", epsilon=epsilon)
        return Server(model, strategy, make_clients(model, X, y, partition), checkpoint_path=path, seed=3,
                      test_set=(X, y))

    whole = server(tmp_path / "whole.flc").run(4)
    server(tmp_path / "part.flc").run(2)
    resumed = server(tmp_path / "part.flc").run(4, resume=True)

    assert np.array_equal(resumed.params_, whole.params_)
    assert resumed.history_["strategy_metrics"] == whole.history_["strategy_metrics"]
    assert whole.strategy.get_params()["strategy"]["class"].endswith(inner.__name__)
    for key, value in whole.strategy.get_state().items():  # momentum, the clipping's centre
        assert np.array_equal(resumed.strategy.get_state()[key], value)
    with pytest.raises(CheckpointError, match="epsilon"):
        server(tmp_path / "part.flc", epsilon=0.25).run(4, resume=True)


@pytest.mark.parametrize("change, message", [
    ({"attackers": []}, "'attackers' parameter of Colluding"),
    ({"attackers": [1, 1]}, "'attackers' parameter of Colluding"),
    ({"attack": "lie"}, "'attack' parameter of Colluding"),
    ({"epsilon": -1.0}, "'epsilon' parameter of Colluding"),
    ({"strategy": object()}, "'strategy' parameter of Colluding"),
])
def test_colluding_names_a_bad_parameter(small, change, message):
    model, X, y, partition = small
    settings = {"strategy": FedAvg(), "attackers": [0], **change}
    strategy = Colluding(settings.pop("strategy"), **settings)

    with pytest.raises((ValueError, TypeError), match=message):
        Server(model, strategy, make_clients(model, X, y, partition), seed=0).run(1)


# ---- plain FedAvg under attack -----------------------------------------------------------

@pytest.fixture(scope="module")
def digits_run(digits):
    model = fl.SoftmaxRegression(n_features=64, n_classes=10)
    partition = fl.make_partition("iid", digits.y_train, 25, seed=0)
    attackers = [20, 21, 22, 23, 24]

    def run(wrap=None, collude=None, rounds=8):
        clients = make_clients(model, digits.X_train, digits.y_train, partition)
        clients = [wrap(c) if wrap and c.cid in attackers else c for c in clients]
        strategy = FedAvg(local_epochs=2, batch_size=10, lr=0.3)
        if collude:
            strategy = Colluding(strategy, attackers=attackers, **collude)
        return Server(model, strategy, clients, test_set=(digits.X_test, digits.y_test), seed=0).run(rounds)

    return run


def test_plain_fedavg_breaks_under_sign_flip_and_ipm_beyond_n_minus_f_over_f(digits_run):
    clean = digits_run().history_["test_accuracy"][-1]
    flipped = digits_run(wrap=lambda c: SignFlipClient(c, scale=8.0)).history_["test_accuracy"][-1]
    ipm_run = digits_run(collude={"attack": "ipm", "epsilon": 8.0}).history_["test_accuracy"][-1]

    assert clean > 0.9 and flipped < 0.3 and ipm_run < 0.3


def test_alie_at_the_papers_z_leaves_plain_fedavg_trained(digits_run):
    # ALIE is built to pass robust rules: against the mean its 5 of 25 vectors shift each
    # coordinate by only (f/n) z sigma_j = 0.2 * 0.253 sigma_j
    clean = digits_run().history_["test_accuracy"][-1]
    attacked = digits_run(collude={"attack": "alie"})

    assert attacked.history_["strategy_metrics"][1]["alie_z"] == alie_z(25, 5)
    assert attacked.history_["strategy_metrics"][1]["attackers_replaced"] == [20, 21, 22, 23, 24]
    assert attacked.history_["test_accuracy"][-1] > clean - 0.03


def test_a_checkpoint_of_one_attack_resumes_neither_another_nor_an_honest_run(small, tmp_path):
    model, X, y, partition = small

    def server(wrap):
        clients = [wrap(c) if c.cid == 2 else c for c in make_clients(model, X, y, partition)]
        return Server(model, FedAvg(local_epochs=1, batch_size=4, lr=0.1), clients,
                      checkpoint_path=tmp_path / "run.flc", seed=3)

    server(lambda c: SignFlipClient(c, scale=2.0)).run(1)
    server(lambda c: SignFlipClient(c, scale=2.0)).run(2, resume=True)       # the same attack resumes
    for other in (lambda c: SignFlipClient(c, scale=3.0), lambda c: ScalingClient(c, gamma=2.0), lambda c: c):
        with pytest.raises(CheckpointError, match="clients"):
            server(other).run(3, resume=True)
