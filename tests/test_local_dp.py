"""Local DP: each client's report is its change clipped to C plus N(0, (z C)^2) noise of the
documented spread, drawn from (seed, cid, round seed) and never from the client's position; one
server round equals a plain loop; the privacy of a client is that of k composed Gaussian
mechanisms with no amplification, and the noise on the mean is sqrt(m) times the central one's."""
import math

import numpy as np
import pytest

import flcourse as fl
from flcourse.federated import DPFedAvg, NumpyClient, ProcessClients, Server, make_clients
from flcourse.federated.messages import FitRes, Update
from flcourse.privacy import epsilon
from flcourse.privacy.local_dp import (NOISE_STREAM, LocalDPClient, local_dp_epsilon, local_dp_noise_multiplier,
                                       mean_noise_std)

CONFIG = {"server_round": 1, "local_epochs": 1, "batch_size": None, "lr": 0.1, "seed": 11, "update": "delta"}


class FixedChange:
    """A client whose change is always ``change`` (returned as asked: a delta or parameters)."""

    def __init__(self, change, cid=0):
        self.change, self.cid, self.n_samples, self.state = np.asarray(change, dtype=float), cid, 3, {}

    def fit(self, params, config):
        as_delta = config.get("update") == "delta"
        return FitRes(self.change.copy() if as_delta else np.asarray(params) + self.change, 3, {"m": 1}, {})

    def evaluate(self, params, config):
        return 0.5, 3, {"accuracy": 1.0}


def gaussian_delta(eps: float, z: float) -> float:
    """The exact delta(eps) of one Gaussian mechanism of sensitivity 1 and noise z (Balle and Wang 2018)."""
    phi = lambda x: 0.5 * math.erfc(-x / math.sqrt(2))  # noqa: E731
    return phi(1 / (2 * z) - eps * z) - math.exp(eps) * phi(-1 / (2 * z) - eps * z)


def test_the_noise_has_standard_deviation_z_c_and_mean_zero():
    # d = 20000 draws of a zero change: the sample std's relative spread is 1 / sqrt(2 d) = 0.5%, 3% is 6 sigma
    z, C, d = 1.3, 0.7, 20_000
    client = LocalDPClient(FixedChange(np.zeros(d)), clip_norm=C, noise_multiplier=z, seed=4)

    report = client.fit(np.zeros(d), CONFIG)[0]

    assert abs(report.std() / (z * C) - 1) < 0.03
    assert abs(report.mean()) < 4 * z * C / math.sqrt(d)


@pytest.mark.parametrize("norm", [0.0, 1e-300, 0.5, 1 - 1e-9, 1 + 1e-9, 3.0, 1e12, 1e300])
@pytest.mark.parametrize("shape", [(), (1,), (7,)])
def test_clipping_bounds_the_report_and_leaves_a_short_change_whole(norm, shape):
    direction = np.random.default_rng(1).normal(size=shape)
    change = direction * (norm / np.linalg.norm(np.ravel(direction)))
    client = LocalDPClient(FixedChange(change), clip_norm=1.0, noise_multiplier=0.0)

    report = client.fit(np.zeros(shape), CONFIG)[0]

    assert report.shape == shape and np.all(np.isfinite(report))
    assert np.linalg.norm(np.ravel(report)) <= 1.0 * (1 + 1e-12)
    if norm <= 1.0:
        assert np.array_equal(report, change)  # an all-zero (or 0-d zero) change stays exactly zero
    else:
        assert np.allclose(report * norm, change, rtol=1e-12, atol=0)


def test_a_parameters_reply_is_the_start_plus_the_privatised_change():
    params, change = np.arange(4.0), np.array([3.0, 0.0, 4.0, 0.0])  # norm 5
    client = LocalDPClient(FixedChange(change), clip_norm=1.0, noise_multiplier=0.5, seed=2)

    as_params = client.fit(params, {**CONFIG, "update": "params"})
    as_delta = client.fit(params, CONFIG)

    assert np.allclose(as_params[0] - params, as_delta[0], rtol=0, atol=1e-15)
    assert as_params[1] == 3 and as_params[2] == {"m": 1}


def test_the_same_seed_gives_bit_identical_noise_and_the_id_not_the_position_drives_it():
    make = lambda cid, seed=0: LocalDPClient(FixedChange(np.zeros(50), cid=cid), clip_norm=1.0,  # noqa: E731
                                             noise_multiplier=1.0, seed=seed)
    first, again = make(7).fit(np.zeros(50), CONFIG)[0], make(7).fit(np.zeros(50), CONFIG)[0]
    other_client, other_seed = make(8).fit(np.zeros(50), CONFIG)[0], make(7, seed=1).fit(np.zeros(50), CONFIG)[0]
    next_round = make(7).fit(np.zeros(50), {**CONFIG, "seed": 12})[0]

    assert np.array_equal(first, again)
    assert np.array_equal(first, np.random.default_rng([0, 7, 11, NOISE_STREAM]).normal(0.0, 1.0, 50))
    assert not any(np.array_equal(first, x) for x in (other_client, other_seed, next_round))


def test_a_server_run_does_not_depend_on_the_order_of_the_clients(digits):
    model = fl.SoftmaxRegression(n_features=64, n_classes=10)
    parts = fl.iid_partition(60, 6, seed=0)
    clients = [LocalDPClient(c, clip_norm=0.5, noise_multiplier=1.0, seed=3)
               for c in make_clients(model, digits.X_train[:60], digits.y_train[:60], parts)]

    def run(order):
        strategy = DPFedAvg(sampling_rate=0.5, clip_norm=1e300, noise_multiplier=0.0)
        return Server(model, strategy, order, seed=5).run(3, params=model.init_params()).params_

    assert np.array_equal(run(clients), run(clients[::-1]))


def test_a_run_is_the_same_in_client_processes_and_after_a_resume(digits, tmp_path):
    model = fl.SoftmaxRegression(n_features=64, n_classes=10)
    parts = fl.iid_partition(40, 4, seed=0)

    def server(clients, path):
        strategy = DPFedAvg(sampling_rate=0.75, clip_norm=1e300, noise_multiplier=0.0)
        wrapped = [LocalDPClient(c, clip_norm=0.5, noise_multiplier=1.0, seed=1)
                   for c in make_clients(model, digits.X_train[:40], digits.y_train[:40], parts)]
        return Server(model, strategy, clients(wrapped), checkpoint_path=path, seed=2)

    whole = server(list, tmp_path / "whole.flc").run(4).params_
    in_processes = server(ProcessClients, None).run(4).params_
    server(list, tmp_path / "part.flc").run(2)
    resumed = server(list, tmp_path / "part.flc").run(4, resume=True).params_

    assert np.array_equal(in_processes, whole) and np.array_equal(resumed, whole)


def test_wrappers_train_in_one_stack_with_the_numbers_each_gives_alone(digits):
    model = fl.SoftmaxRegression(n_features=64, n_classes=10)
    inner = make_clients(model, digits.X_train[:40], digits.y_train[:40], fl.iid_partition(40, 4, seed=0))
    clients = [LocalDPClient(c, clip_norm=0.2, noise_multiplier=1.5, seed=k) for k, c in enumerate(inner)]
    params = np.zeros(model.n_params)
    alone_client = LocalDPClient(FixedChange(np.zeros(3)), clip_norm=1.0, noise_multiplier=1.0)

    stacked = LocalDPClient.fit_stacked(clients, params, CONFIG)

    assert len({c.stack_key(CONFIG) for c in clients}) == 1
    assert alone_client.stack_key(CONFIG) != LocalDPClient(FixedChange(np.zeros(3)), clip_norm=1.0,
                                                           noise_multiplier=1.0).stack_key(CONFIG)
    for client, reply in zip(clients, stacked):
        assert np.array_equal(reply[0], client.fit(params, CONFIG)[0]) and reply[1] == 10


def test_one_server_round_equals_a_plain_loop_of_clip_noise_sum_over_qn(digits):
    model, q, C, z, lr, seed = fl.SoftmaxRegression(n_features=64, n_classes=10), 0.5, 0.3, 0.8, 0.7, 9
    X, y, parts = digits.X_train[:80], digits.y_train[:80], fl.iid_partition(80, 8, seed=1)
    strategy = DPFedAvg(sampling_rate=q, clip_norm=1e300, noise_multiplier=0.0, server_lr=lr, lr=0.2)
    clients = [LocalDPClient(c, clip_norm=C, noise_multiplier=z, seed=seed) for c in make_clients(model, X, y, parts)]
    params = np.random.default_rng(2).normal(size=model.n_params) * 0.01

    new = Server(model, strategy, clients, seed=4).run(1, params=params).params_

    rng = np.random.default_rng(4)  # the server's stream: the round's seed first, then one draw per client
    round_seed, sampled = int(rng.integers(2**63)), np.flatnonzero(rng.random(8) < q)
    config = {"server_round": 1, "local_epochs": 1, "batch_size": None, "lr": 0.2, "seed": round_seed}
    total = np.zeros(model.n_params)
    for cid in sampled:
        change = NumpyClient(model, X[parts[cid]], y[parts[cid]], cid=int(cid)).fit(params, config)[0] - params
        change = change * min(1.0, C / math.sqrt(sum(v * v for v in change)))
        total += change + np.random.default_rng([seed, int(cid), round_seed, NOISE_STREAM]).normal(0, z * C,
                                                                                                   model.n_params)
    assert 0 < len(sampled) < 8
    np.testing.assert_allclose(new, params + lr * total / (q * 8), rtol=0, atol=1e-12)


def test_the_noise_on_the_mean_is_sqrt_m_times_the_central_one(rng):
    # 40 zero changes, all sampled; d = 5000 coordinates: 3% is 4 sigma of either sample std
    z, C, m, d = 1.0, 2.0, 40, 5000
    updates = [Update(cid, LocalDPClient(FixedChange(np.zeros(d), cid), clip_norm=C, noise_multiplier=z)
                      .fit(np.zeros(d), CONFIG)[0], 3, {}, {}) for cid in range(m)]
    local, central = DPFedAvg(noise_multiplier=0.0, clip_norm=1e300), DPFedAvg(noise_multiplier=z, clip_norm=C)
    for strategy in (local, central):
        strategy.initialize(np.zeros(d))
        strategy.configure_fit(1, np.zeros(d), list(range(m)), rng)

    local_std = local.aggregate_fit(1, np.zeros(d), updates, [])[0].std()
    central_std = central.aggregate_fit(1, np.zeros(d), [Update(u.cid, np.zeros(d), 3, {}, {}) for u in updates],
                                        [])[0].std()

    assert abs(local_std / mean_noise_std(z, C, m, where="local") - 1) < 0.03
    assert abs(central_std / mean_noise_std(z, C, m, where="central") - 1) < 0.03
    assert math.isclose(mean_noise_std(z, C, m, where="local") / mean_noise_std(z, C, m), math.sqrt(m))
    assert math.isclose(mean_noise_std(z, C, 9, where="local", denominator=10.0), z * C * 3 / 10)


@pytest.mark.parametrize("z, k", [(0.8, 1), (2.0, 1), (3.0, 10), (10.0, 50)])
def test_the_privacy_of_k_reports_is_one_gaussian_with_z_over_sqrt_k_and_bounds_the_exact_one(z, k):
    delta = 1e-5

    eps = local_dp_epsilon(z, k, delta)

    assert math.isclose(eps, local_dp_epsilon(z / math.sqrt(k), 1, delta), rel_tol=1e-9)  # no amplification
    assert math.isclose(eps, epsilon(z, 1.0, k, delta), rel_tol=0)
    assert gaussian_delta(eps, z / math.sqrt(k)) <= delta   # a valid bound on the exact curve ...
    assert gaussian_delta(0.75 * eps, z / math.sqrt(k)) > delta  # ... within a third of it
    assert math.isclose(local_dp_epsilon(z, k, delta, neighbour="replace"), local_dp_epsilon(z / 2, k, delta))


def test_no_report_costs_nothing_and_no_noise_costs_everything():
    assert local_dp_epsilon(1.0, 0, 1e-5) == 0.0 and local_dp_epsilon(0.0, 0, 1e-5) == 0.0
    assert local_dp_epsilon(0.0, 3, 1e-5) == math.inf


@pytest.mark.parametrize("target, k, neighbour", [(1.0, 1, "add_remove"), (4.0, 13, "add_remove"),
                                                  (8.0, 50, "replace")])
def test_the_noise_multiplier_for_a_target_just_meets_it(target, k, neighbour):
    z = local_dp_noise_multiplier(target, k, 1e-5, neighbour=neighbour)

    assert local_dp_epsilon(z, k, 1e-5, neighbour=neighbour) <= target
    assert local_dp_epsilon(z * (1 - 1e-4), k, 1e-5, neighbour=neighbour) > target


def test_the_wrapper_forwards_the_inner_clients_id_size_state_and_evaluation():
    inner = FixedChange(np.zeros(3), cid=5)
    client = LocalDPClient(inner, clip_norm=1.0, noise_multiplier=1.0)

    memory = {"memory": np.ones(2)}
    client.state = memory

    assert client.cid == 5 and client.n_samples == 3 and inner.state is memory and client.state is memory
    assert client.evaluate(np.zeros(3), {}) == (0.5, 3, {"accuracy": 1.0})
    assert "clip_norm=1.0" in repr(client) and "noise_multiplier=1.0" in repr(client)
    other = LocalDPClient(inner, clip_norm=1.0, noise_multiplier=2.0)
    assert client.fingerprint() == LocalDPClient(inner, clip_norm=1.0, noise_multiplier=1.0).fingerprint()
    assert client.fingerprint() != other.fingerprint()


@pytest.mark.parametrize("kwargs, error, message", [
    ({"clip_norm": 0.0}, ValueError, "The 'clip_norm' parameter of LocalDPClient must be a float in (0, inf). "
                                     "Got 0.0 instead."),
    ({"clip_norm": math.nan}, ValueError, "'clip_norm' parameter of LocalDPClient must be a float in (0, inf)"),
    ({"noise_multiplier": -0.5}, ValueError, "The 'noise_multiplier' parameter of LocalDPClient must be a float "
                                             "in [0, inf). Got -0.5 instead."),
    ({"noise_multiplier": "1"}, TypeError, "'noise_multiplier' parameter of LocalDPClient must be a float"),
    ({"seed": 1.5}, TypeError, "The 'seed' parameter of LocalDPClient must be an int in [0, inf). Got 1.5"),
    ({"seed": -1}, ValueError, "The 'seed' parameter of LocalDPClient must be an int in [0, inf). Got -1"),
])
def test_bad_settings_are_refused_with_a_message_naming_them(kwargs, error, message):
    settings = {"clip_norm": 1.0, "noise_multiplier": 1.0, **kwargs}

    with pytest.raises(error) as caught:
        LocalDPClient(FixedChange(np.zeros(2)), **settings)

    assert message in str(caught.value)


def test_a_client_without_fit_or_int_id_and_a_config_without_seed_are_refused():
    with pytest.raises(TypeError, match="'client' parameter of LocalDPClient must be a client with a fit method"):
        LocalDPClient(object(), clip_norm=1.0, noise_multiplier=1.0)
    with pytest.raises(TypeError, match=r"must have a non-negative int 'cid' .*Got cid='a'"):
        LocalDPClient(FixedChange(np.zeros(2), cid="a"), clip_norm=1.0, noise_multiplier=1.0)
    client = LocalDPClient(FixedChange(np.zeros(2)), clip_norm=1.0, noise_multiplier=1.0)
    with pytest.raises(ValueError, match="'config' parameter of LocalDPClient.fit must be a dict with the round's"):
        client.fit(np.zeros(2), {"update": "delta"})
    with pytest.raises(ValueError, match=r"The 'config\[\"seed\"\]' parameter of LocalDPClient.fit must be an int"):
        client.fit(np.zeros(2), {"seed": -3})


@pytest.mark.parametrize("call, message", [
    (lambda: local_dp_epsilon(-1.0, 3, 1e-5), "The 'noise_multiplier' parameter of local_dp_epsilon must be a "
                                              "float in [0, inf). Got -1.0 instead."),
    (lambda: local_dp_epsilon(1.0, -1, 1e-5), "The 'n_reports' parameter of local_dp_epsilon must be an int in "
                                              "[0, inf). Got -1 instead."),
    (lambda: local_dp_epsilon(1.0, 3, 1.0), "The 'delta' parameter of local_dp_epsilon must be a float in (0, 1). "
                                            "Got 1.0 instead."),
    (lambda: local_dp_epsilon(1.0, 3, 1e-5, neighbour="swap"), "The 'neighbour' parameter of local_dp_epsilon must "
                                                               "be one of ['add_remove', 'replace']. Got 'swap'"),
    (lambda: local_dp_noise_multiplier(0.0, 3, 1e-5), "The 'target_epsilon' parameter of local_dp_noise_multiplier "
                                                      "must be a float in (0, inf). Got 0.0 instead."),
    (lambda: local_dp_noise_multiplier(1.0, 0, 1e-5), "The 'n_reports' parameter of local_dp_noise_multiplier must "
                                                      "be an int in [1, inf). Got 0 instead."),
    (lambda: mean_noise_std(1.0, 0.0, 10), "The 'clip_norm' parameter of mean_noise_std must be a float in (0, inf). "
                                           "Got 0.0 instead."),
    (lambda: mean_noise_std(1.0, 1.0, 0), "The 'n_reports' parameter of mean_noise_std must be a float in (0, inf). "
                                          "Got 0 instead."),
    (lambda: mean_noise_std(1.0, 1.0, 5, where="server"), "The 'where' parameter of mean_noise_std must be one of "
                                                          "['central', 'local']. Got 'server' instead."),
    (lambda: mean_noise_std(1.0, 1.0, 5, denominator=-2.0), "The 'denominator' parameter of mean_noise_std must be "
                                                            "a float in (0, inf). Got -2.0 instead."),
])
def test_bad_arguments_of_the_functions_are_refused_with_a_message_naming_them(call, message):
    with pytest.raises((ValueError, TypeError)) as caught:
        call()

    assert message in str(caught.value)
