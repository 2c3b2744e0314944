"""SecAggFedAvg in the server loop: four stages with in-process and process clients, the result
against a plain loop over the same clients' changes (encoded, summed with Python ints, decoded),
a client dropping at each stage, the abort below t, and clients that send junk."""
import math

import numpy as np
import pytest

import flcourse as fl
from flcourse.federated import ClientFailure, NumpyClient, ProcessClients, Server, make_clients
from flcourse.federated.secagg_client import SecAggClient
from flcourse.federated.strategies.secagg import SecAggFedAvg
from flcourse.privacy.fixed_point import clip_and_encode, decode_sum
from flcourse.privacy.secagg_protocol import SecureAggregationAborted

from stage_helpers import DroppingSecAggClient

N_CLIENTS = 6


class Recording(NumpyClient):
    """Keeps the configs it was given, to replay its work in the plain loop."""

    def fit(self, params, config):
        self.seen = getattr(self, "seen", []) + [(params.copy(), dict(config))]
        return super().fit(params, config)


@pytest.fixture(scope="module")
def data():
    X, y, partition = fl.make_fedprox_synthetic(1.0, 1.0, n_clients=N_CLIENTS, n_features=6, n_classes=4, seed=2)
    return fl.SoftmaxRegression(n_features=6, n_classes=4), X, y, partition


def honest(data, cls=NumpyClient):
    model, X, y, partition = data
    return [cls(model, X[p], y[p], cid=k) for k, p in enumerate(partition)]


def plain_round(clients, survivors, strategy, params, config):
    """The reference: each survivor's change, encoded; summed as Python ints; decoded; averaged."""
    total = 0
    for client in clients:
        if client.cid in survivors:
            delta = NumpyClient.fit(client, params, config)[0]
            total = total + clip_and_encode(delta, strategy.clip, strategy.bits).astype(object)
    total = np.array([int(v) % 2**32 for v in total], dtype=np.uint64)
    mean = decode_sum(total, len(survivors), strategy.clip, strategy.bits) / len(survivors)
    return params + strategy.server_lr * mean


def test_a_round_equals_the_plain_loop_over_the_clients_changes(data):
    model = data[0]
    inner = honest(data, Recording)
    strategy = SecAggFedAvg(lr=0.5, clip=0.5, local_epochs=2, batch_size=4)
    server = Server(model, strategy, [SecAggClient(c) for c in inner], seed=3).run(2)
    params, config = inner[0].seen[-1]
    assert np.array_equal(server.params_, plain_round(inner, set(range(N_CLIENTS)), strategy, params, config))
    assert server.history_["strategy_metrics"][-1]["threshold"] == 4  # ceil(0.6 * 6)


@pytest.mark.parametrize("stage", DroppingSecAggClient.STAGES)
def test_a_client_dropping_at_each_stage_is_recovered(data, stage):
    model = data[0]
    inner = honest(data, Recording)
    clients = [DroppingSecAggClient(c, stage) if c.cid == 2 else SecAggClient(c) for c in inner]
    server = Server(model, SecAggFedAvg(lr=0.5), clients, seed=3, on_invalid="drop").run(1)
    survivors = set(range(N_CLIENTS)) - ({2} if stage != "unmask" else set())  # its y counts if it sent it
    params, config = inner[0].seen[-1]
    assert np.array_equal(server.params_, plain_round(inner, survivors, SecAggFedAvg(lr=0.5), params, config))
    assert server.history_["dropped"][1][0][0] == 2 and "went offline" in server.history_["dropped"][1][0][1]


def drop_pattern(inner):
    """Two clients drop (one before its masked input, one after): n - t = 2 with t = 4."""
    return [DroppingSecAggClient(c, {1: "masked_fit", 4: "unmask"}[c.cid]) if c.cid in (1, 4) else SecAggClient(c)
            for c in inner]


def test_in_process_and_process_clients_give_identical_sums(data):
    model = data[0]
    strategy = dict(lr=0.5, threshold=4 / 6, fraction_fit=1.0)
    alone = Server(model, SecAggFedAvg(**strategy), drop_pattern(honest(data)), seed=5, on_invalid="drop").run(3)
    processes = ProcessClients(drop_pattern(honest(data)))
    apart = Server(model, SecAggFedAvg(**strategy), processes, seed=5, on_invalid="drop").run(3)
    assert np.array_equal(alone.params_, apart.params_)
    assert alone.history_["strategy_metrics"][1]["n_masked"] == 5
    assert apart.history_["bytes_received"] == alone.history_["bytes_received"]


def test_a_client_process_killed_mid_round_is_recovered_like_one_that_left(data):
    model = data[0]
    left = [DroppingSecAggClient(c, "masked_fit") if c.cid == 1 else SecAggClient(c) for c in honest(data)]
    killed = [DroppingSecAggClient(c, "masked_fit", how="exit") if c.cid == 1 else SecAggClient(c)
              for c in honest(data)]
    alone = Server(model, SecAggFedAvg(lr=0.5), left, seed=5, on_invalid="drop").run(1)
    apart = Server(model, SecAggFedAvg(lr=0.5), ProcessClients(killed), seed=5, on_invalid="drop",
                   round_timeout=10.0).run(1)
    assert np.array_equal(alone.params_, apart.params_)
    assert apart.history_["dropped"][1][0][0] == 1 and apart.history_["strategy_metrics"][1]["n_masked"] == 5


def test_fewer_than_t_survivors_abort_the_round(data):
    model = data[0]
    clients = drop_pattern(honest(data))
    with pytest.raises(SecureAggregationAborted, match="at the unmask stage: 4 client.*threshold t = 5"):
        Server(model, SecAggFedAvg(threshold=5 / 6), clients, seed=5, on_invalid="drop").run(1)
    with pytest.raises(ClientFailure, match="went offline"):  # under "fail", the first dropout fails the round
        Server(model, SecAggFedAvg(), drop_pattern(honest(data)), seed=5).run(1)


def test_one_client_alone_is_refused(data):
    model = data[0]
    clients = [SecAggClient(c) for c in honest(data)]
    with pytest.raises(SecureAggregationAborted, match=r"needs two clients or more\) stage: 1 client\(s\) left"):
        Server(model, SecAggFedAvg(fraction_fit=0.1), clients, seed=5).run(1)


class LowOrderKey(SecAggClient):
    def secagg_advertise(self, server_round):
        keys = super().secagg_advertise(server_round)
        keys[32:] = 0  # a low-order mask key would zero every pairwise secret
        self._session.public_keys = keys.tobytes()  # and it goes on with it as its own
        return keys


class WrongMask(SecAggClient):
    def secagg_masked_fit(self, *args):
        y, n = super().secagg_masked_fit(*args)
        return [y.astype(np.float64), n]


@pytest.mark.parametrize("bad", [LowOrderKey, WrongMask])
def test_a_client_that_sends_junk_is_dropped_and_the_others_are_summed(data, bad):
    model = data[0]
    inner = honest(data, Recording)
    clients = [bad(c) if c.cid == 0 else SecAggClient(c) for c in inner]
    server = Server(model, SecAggFedAvg(lr=0.5), clients, seed=3, on_invalid="drop").run(1)
    params, config = inner[1].seen[-1]
    assert np.array_equal(server.params_, plain_round(inner, set(range(1, N_CLIENTS)), SecAggFedAvg(lr=0.5),
                                                      params, config))
    assert [cid for cid, _ in server.history_["dropped"][1]] == [0]


def test_distributed_noise_sums_to_the_central_standard_deviation(data):
    """Each of m = 6 clients adds N(0, (zC)^2 / t), t = 4: the mean's noise is zC sqrt(m / t) / m."""
    model = data[0]
    quiet = dict(lr=0.5, clip=8.0, bits=24, clip_norm=1.0)
    base = Server(model, SecAggFedAvg(**quiet), [SecAggClient(c) for c in honest(data)], seed=3).run(1)
    noisy = Server(model, SecAggFedAvg(noise_multiplier=2.0, **quiet), [SecAggClient(c) for c in honest(data)],
                   seed=3).run(1)
    noise = (noisy.params_ - base.params_) * N_CLIENTS
    expected = 2.0 * 1.0 * math.sqrt(N_CLIENTS / 4)
    assert noise.size == 28 and abs(noise.std() / expected - 1) < 0.3  # 28 draws: +-30% at > 3 sigma
    many = np.concatenate([Server(model, SecAggFedAvg(noise_multiplier=2.0, **quiet),
                                  [SecAggClient(c) for c in honest(data)], seed=s).run(1).params_ -
                           Server(model, SecAggFedAvg(**quiet), [SecAggClient(c) for c in honest(data)],
                                  seed=s).run(1).params_ for s in range(20)]) * N_CLIENTS
    assert abs(many.std() / expected - 1) < 0.08  # 560 draws


def test_noise_without_a_clipping_norm_is_refused(data):
    model = data[0]
    with pytest.raises(ValueError, match="'noise_multiplier' parameter of SecAggFedAvg needs a 'clip_norm'"):
        Server(model, SecAggFedAvg(noise_multiplier=1.0), [SecAggClient(c) for c in honest(data)], seed=0).run(1)


def test_the_wrapper_refuses_a_client_without_fit_and_stages_out_of_order(data):
    with pytest.raises(TypeError, match="'client' parameter of SecAggClient must be a client"):
        SecAggClient(object())
    client = SecAggClient(make_clients(data[0], data[1], data[2], data[3])[0])
    with pytest.raises(ValueError, match="no secure-aggregation session for round 3"):
        client.secagg_unmask(3, [0, 1], [])


def test_more_clients_than_the_ring_can_sum_are_refused_before_any_stage(data):
    strategy = SecAggFedAvg()
    strategy.bits = 31  # past the constructor's constraint (2..24): 2 sums of 31 bits fit in Z_2^32, not 6
    params = np.zeros(data[0].n_params)
    strategy.initialize(params)
    with pytest.raises(ValueError, match="'bits' parameter of SecAggFedAvg is too large for 6 clients"):
        strategy.run_round(1, params, list(range(N_CLIENTS)), np.random.default_rng(0), grid=None)


def test_the_command_line_wraps_its_clients_for_secure_aggregation(tmp_path):
    from flcourse.cli import main

    import json

    assert main(["run", "--strategy", "secaggfedavg", "--clients", "4", "--fraction", "1", "--rounds", "2",
                 "--no-progress", "--seed", "0", "--out", str(tmp_path)]) == 0
    history = json.loads((tmp_path / "history.json").read_text())
    assert [m.get("n_masked") for m in history["strategy_metrics"]] == [None, 4, 4]


@pytest.mark.parametrize("stage", DroppingSecAggClient.STAGES)
def test_secagg_plus_recovers_a_client_dropping_at_each_stage(data, stage):
    """k = 2 on 6 clients: a ring, each client's secrets shared 2-of-3 with its two neighbours."""
    model = data[0]
    inner = honest(data, Recording)
    clients = [DroppingSecAggClient(c, stage) if c.cid == 2 else SecAggClient(c) for c in inner]
    server = Server(model, SecAggFedAvg(lr=0.5, neighbours=2), clients, seed=3, on_invalid="drop").run(1)
    survivors = set(range(N_CLIENTS)) - ({2} if stage != "unmask" else set())
    params, config = inner[0].seen[-1]
    assert np.array_equal(server.params_, plain_round(inner, survivors, SecAggFedAvg(lr=0.5), params, config))
    metrics = server.history_["strategy_metrics"][1]
    assert metrics["neighbours"] == 2 and metrics["share_threshold"] == 2


def test_secagg_plus_sends_fewer_bytes_and_in_processes_gives_the_same_sum(data):
    model, X, y, _ = data
    partition = [np.arange(k, len(y), 12) for k in range(12)]
    make = lambda: [SecAggClient(NumpyClient(model, X[p], y[p], cid=k)) for k, p in enumerate(partition)]  # noqa: E731
    full = Server(model, SecAggFedAvg(lr=0.5), make(), seed=1).run(1)
    plus = Server(model, SecAggFedAvg(lr=0.5, neighbours=4), make(), seed=1).run(1)
    apart = Server(model, SecAggFedAvg(lr=0.5, neighbours=4), ProcessClients(make()), seed=1).run(1)
    assert np.array_equal(full.params_, plus.params_) and np.array_equal(plus.params_, apart.params_)
    assert plus.history_["wire_bytes_received"][1] < full.history_["wire_bytes_received"][1]
    assert plus.history_["wire_bytes_sent"][1] < full.history_["wire_bytes_sent"][1]


def test_an_odd_degree_is_refused(data):
    with pytest.raises(ValueError, match="'neighbours' parameter of SecAggFedAvg must be even"):
        Server(data[0], SecAggFedAvg(neighbours=3), [SecAggClient(c) for c in honest(data)], seed=0).run(1)
