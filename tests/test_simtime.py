"""Simulated time: the round settlement rules by hand, the systems' draws by id, and the timed
strategies (deadline, over-selection, FedProx's partial work, FedBuff) against independent plain
loops written here (<= 1e-12, clock included). Checkpoint/resume is in test_contract.py."""
import heapq
import math

import numpy as np
import pytest

import flcourse as fl
from flcourse.federated import Server, make_clients
from flcourse.federated.simtime import SimulatedSystems, settle_round, simulated_seconds
from flcourse.federated.strategies.fedbuff import FedBuff
from flcourse.federated.strategies.timed import TimedFedAvg, TimedFedProx

N_CLIENTS = 10
SYSTEMS = dict(speed_median=30.0, speed_sigma=1.0, bandwidth_median=2e4, bandwidth_sigma=0.5, seed=5)


@pytest.fixture(scope="module")
def federation():
    X, y, partition = fl.make_fedprox_synthetic(1.0, 1.0, n_clients=N_CLIENTS, n_features=6, n_classes=3, seed=1)
    model = fl.SoftmaxRegression(n_features=6, n_classes=3)
    return model, X, y, partition


# ------------------------------------------------------------------ settle_round, by hand
@pytest.mark.parametrize("arrivals, kwargs, kept, duration", [
    ([3.0, 1.0, 2.0], {}, [0, 1, 2], 3.0),                                  # synchronous
    ([3.0, np.inf, 2.0], {"timeout": 10.0}, [0, 2], 10.0),                  # one dropped out
    ([3.0, 1.0, 5.0], {"deadline": 4.0}, [0, 1], 4.0),                      # one late
    ([3.0, 1.0, 2.0], {"deadline": 4.0}, [0, 1, 2], 3.0),                   # all on time
    ([3.0, 1.0, 2.0, 1.0], {"n_wanted": 2}, [1, 3], 1.0),                   # first K, a tie
    ([3.0, 1.0, 2.0, 9.0], {"n_wanted": 3, "deadline": 8.0}, [0, 1, 2], 3.0),
    ([np.inf, 1.0, 9.0], {"n_wanted": 2, "deadline": 5.0}, [1], 5.0),      # too few by the deadline
    ([], {"deadline": 5.0}, [], 0.0),
])
def test_settle_round_follows_its_rules(arrivals, kwargs, kept, duration):
    got_kept, got_duration = settle_round(arrivals, **kwargs)
    assert got_kept.tolist() == kept and got_duration == duration


def test_settle_round_refuses_to_wait_forever_and_bad_times():
    with pytest.raises(ValueError, match="finite 'deadline' or 'timeout'"):
        settle_round([1.0, np.inf])
    with pytest.raises(ValueError, match="'arrivals' parameter of settle_round"):
        settle_round([1.0, -2.0])
    with pytest.raises(ValueError, match="'n_wanted' parameter of settle_round"):
        settle_round([1.0], n_wanted=0)


# ------------------------------------------------------------------ the systems' draws
def test_a_clients_draws_depend_on_its_id_not_its_position():
    systems = SimulatedSystems(**SYSTEMS)
    assert np.array_equal(systems.speeds([7, 2]), systems.speeds([2, 7])[::-1])
    small = SimulatedSystems(**SYSTEMS).speeds([3])                 # drawn for ids 0..3 only
    assert systems.speeds([300, 3])[1] == small[0]                  # the same after a longer draw
    expected = 30.0 * np.exp(np.random.default_rng([5, 0]).standard_normal(8)[[7, 2]])
    np.testing.assert_allclose(systems.speeds([7, 2]), expected, rtol=1e-15)


def test_speeds_presence_and_dropout_have_their_distributions():
    systems = SimulatedSystems(speed_median=50.0, speed_sigma=1.0, availability=0.7, dropout=0.2, seed=0)
    cids = list(range(20_000))
    speeds = systems.speeds(cids)
    assert abs(np.median(speeds) / 50.0 - 1) < 0.03 and abs(np.log(speeds).std() - 1.0) < 0.02
    assert abs(len(systems.present(cids, 1, 0.0)) / 20_000 - 0.7) < 0.015
    arrivals = systems.arrival_times(cids, 10, 1, 1000, server_round=1)
    assert abs(np.isinf(arrivals).mean() - 0.2) < 0.015


def test_a_daily_cycle_moves_presence_with_each_clients_phase():
    systems = SimulatedSystems(availability=0.5, daily_amplitude=1.0, seed=2)
    phase = np.random.default_rng([2, 2]).random(4)
    p = systems.presence_probability(range(4), 6 * 3600.0)
    np.testing.assert_allclose(p, np.clip(0.5 * (1 + np.cos(2 * np.pi * (0.25 - phase))), 0, 1), rtol=1e-14)


def test_systems_refuse_bad_parameters():
    with pytest.raises(ValueError, match="'dropout' parameter of SimulatedSystems"):
        SimulatedSystems(dropout=1.0)
    with pytest.raises(TypeError, match="'systems' parameter of TimedFedAvg"):
        TimedFedAvg(systems="fast").validate()


# ------------------------------------------------------------------ plain loops
def plain_systems(n_clients, seed, speed_median, speed_sigma, bandwidth_median, bandwidth_sigma):
    speeds = speed_median * np.exp(speed_sigma * np.random.default_rng([seed, 0]).standard_normal(n_clients))
    links = bandwidth_median * np.exp(bandwidth_sigma * np.random.default_rng([seed, 1]).standard_normal(n_clients))
    return speeds, links


def plain_timed_fedavg(model, X, y, partition, rounds, seed, *, deadline, over, epochs, fraction=0.5,
                       partial=False, mu=0.0, timeout=600.0):
    """Synchronous / deadline / over-selection / partial-work FedAvg, written out round by round."""
    speeds, links = plain_systems(len(partition), **{k: SYSTEMS[k] for k in SYSTEMS if k != "seed"}, seed=5)
    rng, w, clock, clocks = np.random.default_rng(seed), np.zeros(model.n_params), 0.0, []
    clients = make_clients(model, X, y, partition)
    wanted = max(1, round(fraction * len(partition)))
    for r in range(1, rounds + 1):
        config = {"server_round": r, "local_epochs": epochs, "batch_size": 5, "lr": 0.2,
                  "seed": int(rng.integers(2**63))}
        m = min(len(partition), math.ceil(over * wanted - 1e-9))
        selected = sorted(rng.choice(len(partition), size=m, replace=False).tolist())
        sizes = np.array([len(partition[c]) for c in selected], dtype=float)
        link = 2 * w.nbytes / links[selected]
        own = np.clip(np.floor((deadline - link) / (sizes / speeds[selected])), 1, epochs) if partial else \
            np.full(m, epochs)
        arrival = own * sizes / speeds[selected] + link
        order = sorted(range(m), key=lambda k: (arrival[k], k))
        limit = min(deadline or math.inf, timeout)
        if over > 1 and sum(arrival <= limit) >= wanted:
            kept, duration = sorted(order[:wanted]), arrival[order[wanted - 1]]
        else:
            kept = [k for k in range(m) if arrival[k] <= limit]
            duration = arrival.max() if len(kept) == m else limit
        news = [clients[selected[k]].fit(w, {**config, "local_epochs": int(own[k]), "mu": mu})[0] for k in kept]
        weights = [len(partition[selected[k]]) for k in kept]
        w = sum(n * v for n, v in zip(weights, news)) / sum(weights) if news else w
        clock += duration
        clocks.append(clock)
    return w, clocks


@pytest.mark.parametrize("strategy, plain", [
    (lambda s: TimedFedAvg(systems=s, deadline=None, **_local(2)), dict(deadline=None, over=1.0, epochs=2)),
    (lambda s: TimedFedAvg(systems=s, deadline=1.5, **_local(2)), dict(deadline=1.5, over=1.0, epochs=2)),
    (lambda s: TimedFedAvg(systems=s, over_selection=1.4, **_local(2)), dict(deadline=None, over=1.4, epochs=2)),
    (lambda s: TimedFedProx(systems=s, deadline=1.5, mu=0.3, **_local(4)),
     dict(deadline=1.5, over=1.0, epochs=4, partial=True, mu=0.3)),
], ids=["synchronous", "deadline", "over-selection", "fedprox-partial-work"])
def test_timed_strategies_equal_a_plain_loop(federation, strategy, plain):
    model, X, y, partition = federation
    server = Server(model, strategy(SimulatedSystems(**SYSTEMS)), make_clients(model, X, y, partition),
                    seed=3).run(6, params=np.zeros(model.n_params))
    w, clocks = plain_timed_fedavg(model, X, y, partition, 6, 3, **plain)
    np.testing.assert_allclose(server.params_, w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(simulated_seconds(server.history_)[1:], clocks, rtol=1e-14)
    assert simulated_seconds(server.history_)[0] == 0.0


def _local(epochs):
    return {"fraction_fit": 0.5, "local_epochs": epochs, "batch_size": 5, "lr": 0.2}


def test_a_deadline_drops_late_clients_and_keeps_the_clock_short(federation):
    model, X, y, partition = federation
    runs = {d: Server(model, TimedFedAvg(systems=SimulatedSystems(**SYSTEMS), deadline=d, **_local(2)),
                      make_clients(model, X, y, partition), seed=3).run(5) for d in (None, 1.0)}
    kept = [m["n_kept"] for m in runs[1.0].history_["strategy_metrics"][1:]]
    assert min(kept) < 5 and max(m["round_seconds"] for m in runs[1.0].history_["strategy_metrics"][1:]) <= 1.0
    assert simulated_seconds(runs[1.0].history_)[-1] < simulated_seconds(runs[None].history_)[-1]


def plain_fedbuff(model, X, y, partition, rounds, seed, *, concurrency, buffer_size, epochs, server_lr, timeout=600.0):
    """FedBuff as an event simulation with a heap of finish times."""
    speeds, links = plain_systems(len(partition), **{k: SYSTEMS[k] for k in SYSTEMS if k != "seed"}, seed=5)
    clients = make_clients(model, X, y, partition)
    rng, w = np.random.default_rng(seed), np.zeros(model.n_params)
    clock, version, draws, heap, pending, deltas, clocks = 0.0, 0, 0, [], [], {}, []

    def dispatch(n, busy):
        nonlocal draws
        draws += 1
        free = [c for c in range(len(partition)) if c not in busy]
        for k in sorted(rng.choice(len(free), size=min(n, len(free)), replace=False).tolist()):
            c = free[k]
            t = epochs * len(partition[c]) / speeds[c] + 2 * w.nbytes / links[c]
            heapq.heappush(heap, (clock + t, c, version))
            pending.append(c)

    for r in range(1, rounds + 1):
        if not heap:
            dispatch(concurrency, set())
        buffer = []
        while len(buffer) < buffer_size:
            clock, c, v = heapq.heappop(heap)
            buffer.append((c, v))
            if len(buffer) < buffer_size:
                dispatch(1, {e[1] for e in heap} | {b[0] for b in buffer})
        config = {"server_round": r, "local_epochs": epochs, "batch_size": 5, "lr": 0.2,
                  "seed": int(rng.integers(2**63)), "update": "delta"}
        for c in sorted(pending):
            deltas[c] = clients[c].fit(w, config)[0]
        pending.clear()
        w = w + server_lr * sum(deltas.pop(c) / np.sqrt(1 + version - v) for c, v in buffer) / buffer_size
        version += 1
        dispatch(1, {e[1] for e in heap})
        clocks.append(clock)
    return w, clocks


def test_fedbuff_equals_an_event_simulation(federation):
    model, X, y, partition = federation
    settings = dict(concurrency=6, buffer_size=3, local_epochs=2, server_lr=0.8)
    server = Server(model, FedBuff(systems=SimulatedSystems(**SYSTEMS), batch_size=5, lr=0.2, **settings),
                    make_clients(model, X, y, partition), seed=3).run(8, params=np.zeros(model.n_params))
    w, clocks = plain_fedbuff(model, X, y, partition, 8, 3, concurrency=6, buffer_size=3, epochs=2, server_lr=0.8)
    np.testing.assert_allclose(server.params_, w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(simulated_seconds(server.history_)[1:], clocks, rtol=1e-14)
    staleness = [m["mean_staleness"] for m in server.history_["strategy_metrics"][1:]]
    assert max(staleness) > 0  # some updates were computed on an older model


def test_fedbuff_replaces_clients_that_drop_out(federation):
    model, X, y, partition = federation
    systems = SimulatedSystems(**{**SYSTEMS, "dropout": 0.4})
    server = Server(model, FedBuff(systems=systems, concurrency=4, buffer_size=2, timeout=50.0, batch_size=5),
                    make_clients(model, X, y, partition), seed=3).run(10)
    metrics = server.history_["strategy_metrics"][1:]
    assert sum(m["n_timeouts"] for m in metrics) > 0 and all(m["n_arrived"] == 2 for m in metrics)
    assert np.all(np.diff(simulated_seconds(server.history_)) >= 0)


def test_nothing_sleeps(federation, monkeypatch):
    import time

    def no_sleep(seconds):
        raise AssertionError(f"a simulated run slept {seconds} s")

    monkeypatch.setattr(time, "sleep", no_sleep)
    model, X, y, partition = federation
    systems = SimulatedSystems(**{**SYSTEMS, "speed_median": 0.01})  # hours per round, simulated
    server = Server(model, FedBuff(systems=systems, concurrency=4, buffer_size=2, timeout=1e6),
                    make_clients(model, X, y, partition), seed=0).run(3)
    assert simulated_seconds(server.history_)[-1] > 3600


def test_fedbuff_ends_a_round_in_which_every_client_times_out(federation):
    model, X, y, partition = federation
    systems = SimulatedSystems(**{**SYSTEMS, "speed_median": 0.01})  # nobody finishes within the timeout
    server = Server(model, FedBuff(systems=systems, concurrency=4, buffer_size=2, timeout=60.0),
                    make_clients(model, X, y, partition), seed=0).run(2, params=np.ones(model.n_params))
    assert np.array_equal(server.params_, np.ones(model.n_params))
    assert [m["n_timeouts"] for m in server.history_["strategy_metrics"][1:]] == [4, 4]
    assert simulated_seconds(server.history_)[-1] == 120.0


def test_presence_is_drawn_per_round_and_per_id():
    systems = SimulatedSystems(availability=0.5, seed=4)
    for server_round in (1, 2):
        draws = np.random.default_rng([4, 3, server_round]).random(40)
        assert systems.present(range(40), server_round, 0.0) == [c for c in range(40) if draws[c] < 0.5]
        assert systems.present([31, 3], server_round, 0.0) == [c for c in (31, 3) if draws[c] < 0.5]
    assert systems.present(range(40), 1, 0.0) != systems.present(range(40), 2, 0.0)


def test_running_does_not_change_a_strategys_identity(federation):
    model, X, y, partition = federation
    strategy = TimedFedAvg(**_local(1))
    before = strategy.get_params()
    Server(model, strategy, make_clients(model, X, y, partition), seed=0).run(1)
    assert strategy.get_params() == before and before["systems"] is None
