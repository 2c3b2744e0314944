"""Rounds beyond one stage, failures in evaluate, and the bytes a round records."""
import numpy as np
import pytest

import flcourse as fl
from flcourse.federated import FedAvg, ProcessClients, Server, make_clients
from flcourse.runtime import encode, encoded_size

from stage_helpers import BrokenEvaluateClient, CountingClient, LabelBalancedFedAvg


@pytest.fixture(scope="module")
def data():
    X, y, partition = fl.make_fedprox_synthetic(0.5, 0.5, n_clients=5, n_features=6, n_classes=4, seed=7)
    return fl.SoftmaxRegression(n_features=6, n_classes=4), X, y, partition


def test_a_two_stage_round_gives_each_client_its_own_instructions(data):
    model, X, y, partition = data
    clients = [CountingClient(model, X[p], y[p], cid=k) for k, p in enumerate(partition)]
    strategy = LabelBalancedFedAvg(n_classes=4, local_epochs=2, batch_size=5, lr=0.2)
    server = Server(model, strategy, clients, seed=1).run(1)

    seed = int(np.random.default_rng(1).integers(2**63))  # the round's seed, drawn first
    expected, sizes = [], []
    for client in clients:  # stage 1 by hand: the labels each holds; stage 2: lr / that number
        config = {"local_epochs": 2, "batch_size": 5, "lr": 0.2 / len(np.unique(client.y)), "seed": seed}
        expected.append(client.fit(model.init_params(), config)[0])
        sizes.append(client.n_samples)
    np.testing.assert_allclose(server.params_, np.average(expected, axis=0, weights=sizes), rtol=0, atol=1e-12)
    assert server.history_["strategy_metrics"][1] == {"stage_one_clients": 5}
    four_floats, parameters = 4 * 8, model.n_params * 8
    assert server.history_["bytes_sent"][1] == 5 * 2 * parameters - 5 * parameters  # counts carry no array out
    assert server.history_["bytes_received"][1] == 5 * (four_floats + parameters)


def test_a_client_failing_a_later_stage_is_dropped_and_named(data):
    model, X, y, partition = data

    class NoCount(CountingClient):
        def count(self, n_classes):
            raise RuntimeError("cannot count")

    clients = [(NoCount if k == 2 else CountingClient)(model, X[p], y[p], cid=k) for k, p in enumerate(partition)]
    server = Server(model, LabelBalancedFedAvg(n_classes=4, lr=0.2), clients, on_invalid="drop", seed=1).run(1)
    assert server.history_["dropped"][1] == [[2, "client 2 raised RuntimeError: cannot count"]]
    assert server.history_["strategy_metrics"][1] == {"stage_one_clients": 4}


@pytest.mark.parametrize("processes", [False, True], ids=["in-process", "processes"])
def test_a_client_failing_to_evaluate_is_dropped_under_drop(data, processes):
    model, X, y, partition = data
    clients = [(BrokenEvaluateClient if k == 1 else CountingClient)(model, X[p], y[p], cid=k)
               for k, p in enumerate(partition)]
    runner = ProcessClients(clients) if processes else clients
    server = Server(model, FedAvg(lr=0.2), runner, evaluate_clients=True, on_invalid="drop", seed=1).run(2)
    assert server.history_["eval_dropped"][0] == [] and server.history_["client_loss"][0] is None
    assert [entry[0] for entry in server.history_["eval_dropped"][1]] == [1]
    assert "cannot evaluate" in server.history_["eval_dropped"][1][0][1]
    assert np.isfinite(server.history_["client_loss"][2]) and len(server.history_["client_loss"]) == 3


def test_the_wire_size_is_the_length_of_the_frame():
    message = ["fit", np.arange(7.0), {"lr": 0.1, "control": np.ones(3), "seed": 2**62, "x": [None, True, 1e-300]}]
    assert encoded_size(message) == len(encode(message))


def test_the_history_counts_the_wire_bytes_of_every_message(data):
    model, X, y, partition = data
    clients = make_clients(model, X, y, partition)
    server = Server(model, FedAvg(lr=0.2, local_epochs=1), clients, seed=1).run(1)
    config = {"server_round": 1, "local_epochs": 1, "batch_size": None, "lr": 0.2,
              "seed": int(np.random.default_rng(1).integers(2**63))}
    request = encode(("fit", model.init_params(), config))
    assert server.history_["wire_bytes_sent"][1] == 5 * len(request)
    assert server.history_["wire_bytes_received"][1] > server.history_["bytes_received"][1] == 5 * model.n_params * 8
