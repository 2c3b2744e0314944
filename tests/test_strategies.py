"""FedProx, SCAFFOLD and FedAvgM against independent plain loops written here (<= 1e-12); the
special cases the course states; grouped training equal to one by one, bit for bit."""
import math

import numpy as np
import pytest

import flcourse as fl
from flcourse.federated import (FedAvg, FedAvgM, FedProx, InProcessClients, OnDemand, Scaffold, Server,
                                make_clients)

N_CLIENTS = 8


@pytest.fixture(scope="module")
def federation():
    X, y, partition = fl.make_fedprox_synthetic(1.0, 1.0, n_clients=N_CLIENTS, n_features=10, n_classes=4, seed=3)
    model = fl.SoftmaxRegression(n_features=10, n_classes=4)
    return model, X, y, partition


def plain_local_sgd(model, w_start, X, y, seed, cid, epochs, batch, lr, correction):
    """Minibatch SGD with model.grad (the checked public gradient), one sample order per epoch."""
    rng, w = np.random.default_rng([seed, cid]), w_start.copy()
    n = len(y)
    batch = n if batch is None else batch
    for _ in range(epochs):
        order = rng.permutation(n)
        for first in range(0, n, batch):
            rows = order[first:first + batch]
            w = w - lr * (model.grad(w, X[rows], y[rows]) + correction(w))
    return w


def draw_round(rng, n_clients, fraction, stragglers=0.0, epochs=1):
    """The server's draws, in the order every strategy makes them: seed, sample, stragglers."""
    seed = int(rng.integers(2**63))
    m = max(1, int(round(fraction * n_clients)))
    selected = sorted(rng.choice(n_clients, size=m, replace=False).tolist())
    local_epochs = {cid: epochs for cid in selected}
    if stragglers:
        chosen = set(rng.choice(m, size=int(round(m * (1 - stragglers))), replace=False).tolist())
        for k, cid in enumerate(selected):
            if k not in chosen:
                local_epochs[cid] = int(rng.integers(1, epochs))
    return seed, local_epochs


def plain_fedprox(model, X, y, partition, *, mu, rounds, fraction, epochs, batch, lr, stragglers, seed):
    rng, x = np.random.default_rng(seed), model.init_params()
    for _ in range(rounds):
        round_seed, local_epochs = draw_round(rng, len(partition), fraction, stragglers, epochs)
        news, sizes = [], []
        for cid, e in local_epochs.items():
            part, start = partition[cid], x.copy()
            news.append(plain_local_sgd(model, x, X[part], y[part], round_seed, cid, e, batch, lr,
                                        lambda w: mu * (w - start)))
            sizes.append(len(part))
        x = sum(n * w for n, w in zip(sizes, news)) / sum(sizes)
    return x


def plain_scaffold(model, X, y, partition, *, rounds, fraction, epochs, batch, lr, server_lr, seed):
    rng, x = np.random.default_rng(seed), model.init_params()
    c, c_local = np.zeros_like(x), {}
    for _ in range(rounds):
        round_seed, local_epochs = draw_round(rng, len(partition), fraction)
        dys, dcs = [], []
        for cid in local_epochs:
            part = partition[cid]
            c_i = c_local.get(cid, np.zeros_like(x))
            y_i = plain_local_sgd(model, x, X[part], y[part], round_seed, cid, epochs, batch, lr,
                                  lambda w: c - c_i)  # g - c_i + c
            K = epochs * math.ceil(len(part) / (batch or len(part)))
            c_plus = c_i - c + (x - y_i) / (K * lr)
            dys.append(y_i - x)
            dcs.append(c_plus - c_i)
            c_local[cid] = c_plus
        x = x + server_lr * sum(dys) / len(dys)
        c = c + len(dcs) / len(partition) * (sum(dcs) / len(dcs))
    return x, c, c_local


def plain_fedavgm(model, X, y, partition, *, rounds, fraction, epochs, batch, lr, server_lr, beta, seed):
    rng, x = np.random.default_rng(seed), model.init_params()
    v = np.zeros_like(x)
    for _ in range(rounds):
        round_seed, local_epochs = draw_round(rng, len(partition), fraction)
        news = [plain_local_sgd(model, x, X[partition[c]], y[partition[c]], round_seed, c, epochs, batch,
                                lr, lambda w: 0.0) for c in local_epochs]
        sizes = [len(partition[c]) for c in local_epochs]
        average = sum(n * w for n, w in zip(sizes, news)) / sum(sizes)
        v = beta * v + (x - average)
        x = x - server_lr * v
    return x


def run(federation, strategy, rounds, clients=None):
    model, X, y, partition = federation
    clients = make_clients(model, X, y, partition) if clients is None else clients
    return Server(model, strategy, clients, seed=5).run(rounds)


@pytest.mark.parametrize("stragglers", [0.0, 0.5])
def test_fedprox_equals_a_plain_loop(federation, stragglers):
    settings = dict(fraction_fit=0.5, local_epochs=3, batch_size=10, lr=0.05, stragglers=stragglers)
    server = run(federation, FedProx(mu=0.7, **settings), 4)
    expected = plain_fedprox(*federation, mu=0.7, rounds=4, fraction=0.5, epochs=3, batch=10, lr=0.05,
                             stragglers=stragglers, seed=5)
    np.testing.assert_allclose(server.params_, expected, rtol=0, atol=1e-12)


def test_scaffold_equals_a_plain_loop(federation):
    strategy = Scaffold(fraction_fit=0.5, local_epochs=2, batch_size=7, lr=0.05, server_lr=0.8)
    clients = make_clients(*federation)
    server = run(federation, strategy, 5, clients)
    x, c, c_local = plain_scaffold(*federation, rounds=5, fraction=0.5, epochs=2, batch=7, lr=0.05,
                                   server_lr=0.8, seed=5)
    np.testing.assert_allclose(server.params_, x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(strategy.get_state()["control"], c, rtol=0, atol=1e-12)
    assert sorted(c_local) == sorted(c.cid for c in clients if c.state)
    for client in clients:
        if client.state:
            np.testing.assert_allclose(client.state["control"], c_local[client.cid], rtol=0, atol=1e-12)


def test_fedavgm_equals_a_plain_loop(federation):
    strategy = FedAvgM(server_lr=0.9, server_momentum=0.8, fraction_fit=0.5, local_epochs=2,
                       batch_size=10, lr=0.05)
    server = run(federation, strategy, 5)
    expected = plain_fedavgm(*federation, rounds=5, fraction=0.5, epochs=2, batch=10, lr=0.05, server_lr=0.9,
                             beta=0.8, seed=5)
    np.testing.assert_allclose(server.params_, expected, rtol=0, atol=1e-12)


def test_fedprox_with_mu_zero_is_fedavg_bit_for_bit(federation):
    settings = dict(fraction_fit=0.5, local_epochs=3, batch_size=10, lr=0.05)
    assert np.array_equal(run(federation, FedProx(mu=0.0, **settings), 4).params_,
                          run(federation, FedAvg(**settings), 4).params_)


def test_fedavg_drops_stragglers_where_fedprox_keeps_their_partial_work(federation):
    settings = dict(fraction_fit=1.0, local_epochs=3, batch_size=10, lr=0.05, stragglers=0.5)
    assert run(federation, FedAvg(**settings), 1).history_["n_selected"][1] == N_CLIENTS // 2
    assert run(federation, FedProx(mu=0.0, **settings), 1).history_["n_selected"][1] == N_CLIENTS


def test_scaffold_with_one_client_and_no_control_is_plain_local_sgd(federation):
    model, X, y, partition = federation
    client = make_clients(model, X, y, partition[:1])
    server = Server(model, Scaffold(local_epochs=3, batch_size=5, lr=0.05), client, seed=5).run(1)
    round_seed, _ = draw_round(np.random.default_rng(5), 1, 1.0)
    expected = plain_local_sgd(model, model.init_params(), X[partition[0]], y[partition[0]], round_seed, 0,
                               3, 5, 0.05, lambda w: 0.0)
    np.testing.assert_allclose(server.params_, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("config", [
    {"local_epochs": 2, "batch_size": 5, "lr": 0.1, "seed": 9},
    {"local_epochs": 2, "batch_size": 5, "lr": 0.1, "seed": 9, "mu": 0.5},
    {"local_epochs": 2, "batch_size": None, "lr": 0.1, "seed": 9, "update": "delta",
     "control": np.linspace(-0.1, 0.1, 44)},
], ids=["sgd", "proximal", "control-variates"])
def test_grouped_clients_equal_clients_run_alone_bit_for_bit(config):
    X, y, _ = fl.make_fedprox_synthetic(0.5, 0.5, n_clients=2, n_features=10, n_classes=4, seed=1)
    model = fl.SoftmaxRegression(n_features=10, n_classes=4)
    partition = np.array_split(np.arange(60), 6)  # six clients of 10 samples: one group
    together, alone = make_clients(model, X, y, partition), make_clients(model, X, y, partition)
    for client, twin in zip(together, alone):  # some with a control variate of their own
        client.state = {"control": np.full(44, 0.01 * client.cid)} if client.cid % 2 else {}
        twin.state = {key: value.copy() for key, value in client.state.items()}
    start = np.random.default_rng(0).normal(size=44)
    grouped = InProcessClients(together).send("fit", {c.cid: (start, config) for c in together})
    for twin in alone:
        status, reply = grouped[twin.cid]
        single = twin.fit(start, config)
        assert status == "ok" and np.array_equal(reply.params, single.params)
        assert reply.extras.keys() == single.extras.keys()
        assert all(np.array_equal(reply.extras[k], single.extras[k]) for k in single.extras)
        assert all(np.array_equal(together[twin.cid].state[k], twin.state[k]) for k in twin.state)


def test_a_subclass_that_overrides_fit_is_called_alone_not_grouped(federation):
    model, X, y, partition = federation

    class Doubling(type(make_clients(model, X, y, partition[:1])[0])):
        def fit(self, params, config):
            new, n, metrics = super().fit(params, config)
            return 2 * new, n, metrics

    clients = [Doubling(model, X[p], y[p], cid=k) for k, p in enumerate(partition)]
    config = {"local_epochs": 1, "batch_size": None, "lr": 0.1, "seed": 1}
    start = np.zeros(model.n_params)
    replies = InProcessClients(clients).send("fit", {c.cid: (start, config) for c in clients})
    for client in clients:
        assert np.array_equal(replies[client.cid][1][0], client.fit(start, config)[0])


def test_on_demand_federation_builds_only_the_selected_clients(federation):
    model, X, y, partition = federation
    built = []
    inner = OnDemand.from_partition(model, X, y, partition)

    def client_fn(cid):
        built.append(cid)
        return inner.client_fn(cid)

    on_demand = OnDemand(client_fn, len(partition), sizes=[len(p) for p in partition])
    strategy = Scaffold(fraction_fit=0.25, local_epochs=2, batch_size=7, lr=0.05)
    server = Server(model, strategy, on_demand, seed=5).run(3)
    listed = run(federation, Scaffold(fraction_fit=0.25, local_epochs=2, batch_size=7, lr=0.05), 3)
    assert np.array_equal(server.params_, listed.params_)
    assert len(built) == 3 * 2  # two clients a round, built when selected
