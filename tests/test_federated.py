import json

import numpy as np
import pytest
from fault_helpers import FaultyClient

import flcourse as fl
from flcourse.federated import FedAvg, FedSGD, NumpyClient, local_sgd, make_clients, sample_clients
from flcourse.federated.server import (ClientFailure, InProcessClients, ProcessClients, Server, load_history,
                             save_history)

DETERMINISTIC_KEYS = ["round", "n_selected", "n_dropped", "dropped", "bytes_sent",
                      "bytes_received", "test_loss", "test_accuracy"]


@pytest.fixture(scope="module")
def setup(digits):
    model = fl.SoftmaxRegression(n_features=64, n_classes=10)
    partition = fl.make_partition("dirichlet:0.3", digits.y_train, 10, seed=0)
    return model, digits, partition


def clients_for(setup):
    model, digits, partition = setup
    return make_clients(model, digits.X_train, digits.y_train, partition)


def test_fedsgd_with_all_clients_equals_centralised_gradient_descent(setup):
    model, digits, _ = setup

    server = Server(model, FedSGD(lr=0.5), clients_for(setup), seed=0).run(20)
    centralised, _ = fl.gradient_descent(model, model.init_params(), digits.X_train, digits.y_train,
                                         lr=0.5, n_steps=20)

    np.testing.assert_allclose(server.params_, centralised, rtol=0, atol=1e-10)


def test_fedavg_with_one_epoch_of_full_batches_equals_fedsgd(setup):
    model = setup[0]

    fedavg = Server(model, FedAvg(local_epochs=1, batch_size=None, lr=0.5), clients_for(setup), seed=0).run(20)
    fedsgd = Server(model, FedSGD(lr=0.5), clients_for(setup), seed=0).run(20)

    np.testing.assert_allclose(fedavg.params_, fedsgd.params_, rtol=0, atol=1e-10)


def test_fedavg_with_several_local_epochs_differs_from_fedsgd_on_skewed_data(setup):
    model = setup[0]

    fedavg = Server(model, FedAvg(local_epochs=5, batch_size=None, lr=0.5), clients_for(setup), seed=0).run(5)
    fedsgd = Server(model, FedSGD(lr=0.5), clients_for(setup), seed=0).run(25)

    assert np.abs(fedavg.params_ - fedsgd.params_).max() > 1e-3  # client drift


def test_client_fit_is_local_sgd_from_the_given_parameters(setup):
    model, digits, partition = setup
    client = NumpyClient(model, digits.X_train[partition[0]], digits.y_train[partition[0]], cid=4)
    config = {"local_epochs": 2, "batch_size": 16, "lr": 0.3, "seed": 11, "server_round": 1}
    start = np.full(model.n_params, 0.01)
    expected = start.copy()
    batches = fl.minibatches(len(client.y), 16, n_epochs=2, seed=np.random.default_rng([11, 4]))
    for batch in batches:
        expected = expected - 0.3 * model.grad(expected, client.X[batch], client.y[batch])

    params, n_examples, metrics = client.fit(start, config)

    np.testing.assert_allclose(params, expected, rtol=0, atol=1e-14)
    assert n_examples == len(partition[0]) and metrics == {}
    assert np.all(start == 0.01)  # the server's copy is not touched


def test_client_evaluate_reports_loss_size_and_accuracy(setup):
    model, digits, _ = setup
    client = NumpyClient(model, digits.X_test, digits.y_test)

    loss, n_examples, metrics = client.evaluate(model.init_params(), {})

    assert loss == pytest.approx(np.log(10)) and n_examples == 450 and 0 <= metrics["accuracy"] <= 1


@pytest.mark.parametrize("fraction, expected", [(0.1, 1), (0.05, 1), (0.25, 2), (0.5, 5), (1.0, 10)])
def test_sampling_takes_a_fraction_of_the_clients_and_at_least_one(fraction, expected):
    picked = sample_clients(10, fraction, np.random.default_rng(0))

    assert len(picked) == expected == len(set(picked.tolist()))


@pytest.mark.parametrize("spec", ["dirichlet:0.3", "iid"])  # iid: equal sizes, grouped in-process
def test_same_seed_gives_bit_identical_history_in_process_and_with_process_clients(spec, setup):
    model, digits, _ = setup
    strategy = FedAvg(fraction_fit=0.5, local_epochs=2, batch_size=10, lr=0.1)
    test_set = (digits.X_test, digits.y_test)
    partition = fl.make_partition(spec, digits.y_train, 10, seed=0)
    clients = make_clients(model, digits.X_train, digits.y_train, partition)

    local = Server(model, strategy, clients, test_set=test_set, seed=3).run(4)
    remote = Server(model, strategy, ProcessClients(clients), test_set=test_set, seed=3).run(4)

    assert np.array_equal(local.params_, remote.params_)
    assert {k: local.history_[k] for k in DETERMINISTIC_KEYS} == {k: remote.history_[k] for k in DETERMINISTIC_KEYS}


def equal_size_clients(model, digits, n_clients=20, size=12):
    """Clients of ``size`` samples each, but for the last three: one sample fewer."""
    sizes = [size] * (n_clients - 3) + [size - 1] * 3
    bounds = np.cumsum([0] + sizes)
    return [NumpyClient(model, digits.X_train[a:b], digits.y_train[a:b], cid=k)
            for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))]


@pytest.mark.parametrize("model", [fl.SoftmaxRegression(n_features=64, n_classes=10, l2=0.01),
                                   fl.MLP(n_features=64, n_hidden=8, n_classes=10),
                                   fl.LinearRegression(n_features=64)], ids=repr)
@pytest.mark.parametrize("batch_size", [1, 5, None])
def test_grouped_clients_compute_bit_for_bit_what_each_computes_alone(model, batch_size, digits, monkeypatch):
    clients = equal_size_clients(model, digits)
    config = {"local_epochs": 3, "batch_size": batch_size, "lr": 0.05, "seed": 5, "server_round": 1}
    params = model.init_params(seed=1) + 0.01
    alone = {cid: client.fit(params, config) for cid, client in enumerate(clients)}
    group_sizes = []
    monkeypatch.setattr("flcourse.federated.client.local_sgd", lambda model, params, X, y, cids, config, **kw:
                        group_sizes.append(len(cids)) or local_sgd(model, params, X, y, cids, config, **kw))

    grouped = InProcessClients(clients).fit([0, 3, 4, 17, 18, 19, 7, 9], params, config, timeout=None)

    assert sorted(group_sizes) == [3, 5]  # sizes 12 (clients 0, 3, 4, 7, 9) and 11 (17, 18, 19)
    for cid, (status, (new_params, n_examples, metrics)) in grouped.items():
        assert status == "ok" and np.array_equal(new_params, alone[cid][0])
        assert n_examples == len(clients[cid].y) and metrics == {}


class StackedFailure(fl.SoftmaxRegression):
    """Softmax regression whose vectorised gradient fails for stacks of ``fail_from`` models or more."""

    def __init__(self, fail_from):
        super().__init__(n_features=64, n_classes=10)
        self.fail_from = fail_from

    def grad_stacked(self, params, X, y):
        if len(params) >= self.fail_from:
            raise FloatingPointError("injected fault")
        return super().grad_stacked(params, X, y)


def test_a_group_whose_vectorised_step_fails_is_retried_client_by_client(digits):
    model = StackedFailure(fail_from=2)
    clients = equal_size_clients(model, digits, n_clients=4)
    config = {"local_epochs": 1, "batch_size": 4, "lr": 0.1, "seed": 0, "server_round": 1}

    outcomes = InProcessClients(clients).fit([0, 1], model.init_params(), config, timeout=None)

    for cid in (0, 1):
        assert outcomes[cid][0] == "ok"
        assert np.array_equal(outcomes[cid][1][0], clients[cid].fit(model.init_params(), config)[0])


def test_when_every_client_of_a_group_fails_each_is_reported_by_id(digits):
    model = StackedFailure(fail_from=1)
    clients = equal_size_clients(model, digits, n_clients=4)
    config = {"local_epochs": 1, "batch_size": 4, "lr": 0.1, "seed": 0, "server_round": 1}

    outcomes = InProcessClients(clients).fit([0, 1], model.init_params(), config, timeout=None)

    assert outcomes == {cid: ("error", f"client {cid} raised FloatingPointError: injected fault")
                        for cid in (0, 1)}


def test_resuming_from_a_checkpoint_ends_bit_identical(setup, tmp_path):
    model = setup[0]
    strategy = FedAvg(fraction_fit=0.3, local_epochs=2, batch_size=10, lr=0.1)
    uninterrupted = Server(model, strategy, clients_for(setup), seed=7).run(6)
    checkpoint = tmp_path / "server.npz"
    Server(model, strategy, clients_for(setup), seed=7, checkpoint_path=checkpoint).run(3)

    resumed = Server(model, strategy, clients_for(setup), seed=7, checkpoint_path=checkpoint).run(6, resume=True)

    assert np.array_equal(resumed.params_, uninterrupted.params_)
    assert resumed.history_["round"] == list(range(7))
    assert {k: resumed.history_[k] for k in DETERMINISTIC_KEYS[:6]} == {k: uninterrupted.history_[k] for k in DETERMINISTIC_KEYS[:6]}


def test_resuming_with_another_strategy_is_refused(setup, tmp_path):
    model = setup[0]
    checkpoint = tmp_path / "server.ckpt"
    Server(model, FedSGD(lr=0.5), clients_for(setup), seed=0, checkpoint_path=checkpoint).run(1)

    with pytest.raises(ValueError, match=r"server.ckpt.*strategy FedSGD's 'lr' is 0.5 in the checkpoint and 0.2 here"):
        Server(model, FedSGD(lr=0.2), clients_for(setup), checkpoint_path=checkpoint).run(2, resume=True)


def test_history_round_trips_through_json(setup, tmp_path):
    model, digits, _ = setup
    server = Server(model, FedSGD(lr=0.5), clients_for(setup), test_set=(digits.X_test, digits.y_test),
                    evaluate_clients=True, seed=0).run(2)

    save_history(server.history_, tmp_path / "history.json")

    assert load_history(tmp_path / "history.json") == json.loads(json.dumps(server.history_))
    assert server.history_["bytes_sent"] == [0, 10 * model.n_params * 8, 10 * model.n_params * 8]
    assert len(server.history_["client_accuracy"]) == 3 and server.history_["client_accuracy"][0] is None


@pytest.mark.parametrize("fault, message", [
    ("shape", r"update from client 2 has shape \(640,\), expected \(650,\)"),
    ("nan", r"update from client 2 holds NaN in 650 of 650 parameters"),
    ("inf", r"update from client 2 holds Inf in 650 of 650 parameters"),
    ("type", r"update from client 2 must hold a plain float ndarray of parameters; got list"),
    ("n_examples", r"update from client 2 must report n_examples as an int in \[1, \d+\]; got 0"),
    ("raise", r"client 2 raised ArithmeticError: injected fault"),
])
def test_an_invalid_update_fails_the_round_with_the_client_and_problem_named(fault, message, setup):
    clients = clients_for(setup)
    clients[2] = FaultyClient(clients[2], fault)

    with pytest.raises(ClientFailure, match="round failed: " + message):
        Server(setup[0], FedSGD(lr=0.5), clients, seed=0).run(2)


@pytest.mark.parametrize("fault", ["shape", "nan", "inf", "type", "raise"])
def test_drop_policy_leaves_out_the_invalid_client_and_logs_it(fault, setup):
    model, digits, partition = setup
    clients = clients_for(setup)
    clients[2] = FaultyClient(clients[2], fault, from_round=2)

    server = Server(model, FedSGD(lr=0.5), clients, on_invalid="drop", seed=0).run(3)

    assert server.history_["n_dropped"] == [0, 0, 1, 1]
    assert server.history_["dropped"][2][0][0] == 2
    others = np.concatenate([p for k, p in enumerate(partition) if k != 2])
    reference = Server(model, FedSGD(lr=0.5), clients_for(setup), seed=0).run(1).params_
    for _ in range(2):  # rounds 2 and 3 are gradient steps on the other clients' data only
        reference = reference - 0.5 * model.grad(reference, digits.X_train[others], digits.y_train[others])
    np.testing.assert_allclose(server.params_, reference, rtol=0, atol=1e-10)


@pytest.mark.parametrize("fault, message", [
    ("exit", r"client 1 \(pid \d+\) exited with code 3"),
    ("hang", r"client 1 did not answer within timeout=2.0 s"),
    ("raise", r"(?s)client 1 raised an exception:.*ArithmeticError: injected fault"),
])
def test_a_client_process_that_crashes_or_hangs_is_detected_within_the_round_timeout(fault, message, setup):
    clients = clients_for(setup)[:4]
    clients[1] = FaultyClient(clients[1], fault, from_round=2)
    pool = ProcessClients(clients)

    with pytest.raises(ClientFailure, match=message):
        Server(setup[0], FedSGD(lr=0.5), pool, round_timeout=2.0, seed=0).run(3)
    assert pool.processes == []


@pytest.mark.parametrize("fault", ["exit", "hang", "raise"])
def test_drop_policy_finishes_the_round_with_the_remaining_client_processes(fault, setup):
    clients = clients_for(setup)[:4]
    clients[1] = FaultyClient(clients[1], fault, from_round=2)
    pool = ProcessClients(clients)

    server = Server(setup[0], FedSGD(lr=0.5), pool, on_invalid="drop", round_timeout=2.0, seed=0).run(3)

    assert server.history_["n_dropped"] == [0, 0, 1, 1]
    assert server.history_["n_selected"] == [0, 4, 4, 4]
    expected = {"exit": "no longer running", "hang": "no longer running", "raise": "raised an exception"}
    assert expected[fault] in server.history_["dropped"][3][0][1]
    assert pool.processes == []


@pytest.mark.parametrize("kwargs, message", [
    ({"fraction_fit": 0}, r"'fraction_fit' parameter of FedAvg must be a float in \(0, 1\]. Got 0"),
    ({"fraction_fit": 1.5}, r"'fraction_fit' parameter of FedAvg must be a float in \(0, 1\]. Got 1.5"),
    ({"local_epochs": 0}, r"'local_epochs' parameter of FedAvg must be an int in \[1, inf\). Got 0"),
    ({"batch_size": 0}, r"'batch_size' parameter of FedAvg must be an int in \[1, inf\). Got 0"),
    ({"lr": -1.0}, r"'lr' parameter of FedAvg must be a float in \(0, inf\). Got -1.0"),
])
def test_bad_strategy_arguments_are_rejected(kwargs, message, setup):
    with pytest.raises(ValueError, match=message):
        Server(setup[0], FedAvg(**kwargs), clients_for(setup)).run(1)


def test_bad_policy_is_rejected(setup):
    with pytest.raises(ValueError, match=r"'on_invalid' parameter of Server must be one of \['drop', 'fail'\]. Got 'ignore'"):
        Server(setup[0], FedSGD(), clients_for(setup), on_invalid="ignore").run(1)


def test_resume_without_a_checkpoint_is_rejected(setup, tmp_path):
    with pytest.raises(ValueError, match=r"Cannot resume from .*none.npz: the file does not exist"):
        Server(setup[0], FedSGD(), clients_for(setup), checkpoint_path=tmp_path / "none.npz").run(1, resume=True)
