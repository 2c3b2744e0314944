"""Our clients under Flower, through flcourse.integrations.flower: the same numbers (runs where
flwr is installed, e.g. pip install "flwr[simulation]"; skipped otherwise)."""
import numpy as np
import pytest

import flcourse as fl
from flcourse.federated import make_clients
from flcourse.integrations.flower import flower_fit, to_flower

flwr = pytest.importorskip("flwr")


@pytest.fixture(scope="module")
def client():
    X, y, partition = fl.make_fedprox_synthetic(0.5, 0.5, n_clients=3, n_features=6, n_classes=4, seed=7)
    return make_clients(fl.SoftmaxRegression(n_features=6, n_classes=4), X, y, partition)[1]


def test_a_client_under_flower_computes_what_it_computes_alone(client):
    config = {"local_epochs": 2, "batch_size": 5, "lr": 0.1, "seed": 3, "mu": 0.5}
    start = np.linspace(-1, 1, client.model.n_params)
    flower_client = to_flower(client)
    assert isinstance(flower_client, flwr.client.NumPyClient)
    flower_client.to_client()  # Flower accepts it as a client
    arrays, n_examples, metrics = flower_client.fit([start], config)
    assert np.array_equal(arrays[0], client.fit(start, config)[0]) and n_examples == client.n_samples
    assert flower_client.evaluate([arrays[0]], {}) == client.evaluate(arrays[0], {})


def test_extras_travel_as_named_arrays_and_array_configs_are_refused(client):
    class WithExtras(type(client)):
        def fit(self, params, config):
            reply = super().fit(params, config)
            reply.extras["norm"] = np.array([np.linalg.norm(reply[0])])
            return reply

    extra = WithExtras(client.model, client.X, client.y, cid=client.cid)
    arrays, _, metrics = flower_fit(extra, [np.zeros(client.model.n_params)],
                                    {"local_epochs": 1, "batch_size": None, "lr": 0.1, "seed": 1})
    assert metrics["extras"] == "norm" and arrays[1][0] == np.linalg.norm(arrays[0])
    with pytest.raises(TypeError, match="must hold scalars only. Got arrays for 'control'"):
        flower_fit(client, [np.zeros(client.model.n_params)], {"control": np.zeros(3)})


def test_where_flowers_median_and_krum_return_nan_ours_do_not():
    from flwr.server.strategy.aggregate import aggregate_krum, aggregate_median

    from flcourse.federated.defences import krum, median

    updates = np.random.default_rng(0).normal(size=(7, 4))
    updates[3] = np.nan                                  # one broken (or malicious) client
    flower_input = [([row], 10) for row in updates]
    assert np.isnan(aggregate_median(flower_input)[0]).any()
    assert np.isnan(aggregate_krum(flower_input, num_malicious=1, to_keep=0)[0]).all()   # it selects the NaN row
    finite = np.delete(updates, 3, axis=0)
    assert np.array_equal(median(updates), np.median(finite, axis=0))
    assert np.isfinite(krum(updates, n_byzantine=1)).all()
    assert any(np.array_equal(krum(updates, n_byzantine=1), row) for row in finite)
