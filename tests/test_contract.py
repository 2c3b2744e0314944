"""One contract test over every strategy and every client type: configure, fit, aggregate,
checkpoint at round r and resume bit for bit (parameters, strategy state, client state), refuse
a resume with other constructor parameters, and reject bad constructor parameters."""
import numpy as np
import pytest

import flcourse as fl
from flcourse.federated import (CheckpointError, FedAvg, FedAvgM, FedProx, FedSGD, OnDemand, ProcessClients,
                                Scaffold, Server, available_strategies, make_clients)
from flcourse.federated.checkpoint import load_checkpoint, unflatten_state
from flcourse.federated.identity import run_identity
from flcourse.federated.simtime import SimulatedSystems
from flcourse.federated.strategies.dpfedavg import DPFedAvg
from flcourse.federated.strategies.fedbuff import FedBuff
from flcourse.federated.strategies.robust import (CenteredClipping, FedMedian, FedTrimmedAvg, GeometricMedian,
                                                  NormBounding, RobustFedAvg)
from flcourse.federated.secagg_client import SecAggClient
from flcourse.federated.strategies.robust_krum import Bulyan, Krum
from flcourse.federated.strategies.secagg import SecAggFedAvg
from flcourse.federated.strategies.timed import TimedFedAvg, TimedFedProx

from stage_helpers import LabelBalancedFedAvg

N_CLIENTS, ROUNDS, STOP = 6, 4, 2
STRATEGIES = {
    "fedavg": lambda **k: FedAvg(fraction_fit=0.5, local_epochs=2, batch_size=8, lr=0.1, **k),
    "fedsgd": lambda **k: FedSGD(fraction_fit=0.5, lr=0.5, **k),
    "fedavgm": lambda **k: FedAvgM(server_momentum=0.5, fraction_fit=0.5, local_epochs=2, batch_size=8, lr=0.1, **k),
    "fedprox": lambda **k: FedProx(mu=k.pop("mu", 0.5), fraction_fit=0.5, local_epochs=3, batch_size=8, lr=0.1,
                                   stragglers=0.5, **k),
    "scaffold": lambda **k: Scaffold(fraction_fit=0.5, local_epochs=2, batch_size=8, lr=0.1, **k),
    "timedfedavg": lambda **k: TimedFedAvg(systems=SimulatedSystems(dropout=0.2, availability=0.8, seed=3),
                                           deadline=k.pop("deadline", 2.0), fraction_fit=0.5, local_epochs=2,
                                           batch_size=8, lr=0.1, **k),
    "timedfedprox": lambda **k: TimedFedProx(systems=SimulatedSystems(speed_median=20.0, seed=3), mu=k.pop("mu", 0.1),
                                             deadline=2.0, fraction_fit=0.5, local_epochs=3, batch_size=8, lr=0.1,
                                             **k),
    "fedbuff": lambda **k: FedBuff(systems=SimulatedSystems(dropout=0.2, seed=3), concurrency=4,
                                   buffer_size=k.pop("buffer_size", 2), local_epochs=2, batch_size=8, lr=0.1, **k),
    "labelbalancedfedavg": lambda **k: LabelBalancedFedAvg(n_classes=4, fraction_fit=0.5, local_epochs=2,
                                                           batch_size=8, lr=0.1, **k),
}
CHANGED = {"fedavg": {"stragglers": 0.25}, "fedsgd": {}, "fedavgm": {"server_lr": 0.5}, "fedprox": {"mu": 0.25},
           "scaffold": {"server_lr": 0.5}, "labelbalancedfedavg": {},
           "timedfedavg": {"deadline": 3.0}, "timedfedprox": {"mu": 0.2}, "fedbuff": {"buffer_size": 3}}
ROBUST = dict(local_epochs=2, batch_size=8, lr=0.1)
STRATEGIES.update({
    "robustfedavg": lambda **k: RobustFedAvg(fraction_fit=0.5, **ROBUST, **k),
    "fedmedian": lambda **k: FedMedian(fraction_fit=1.0, bucket_size=k.pop("bucket_size", 2), **ROBUST, **k),
    "fedtrimmedavg": lambda **k: FedTrimmedAvg(beta=k.pop("beta", 0.2), fraction_fit=1.0, **ROBUST, **k),
    "krum": lambda **k: Krum(n_byzantine=1, n_selected=k.pop("n_selected", 2), fraction_fit=1.0, **ROBUST, **k),
    "bulyan": lambda **k: Bulyan(n_byzantine=0, fraction_fit=1.0, bucket_size=2, **ROBUST, **k),
    "geometricmedian": lambda **k: GeometricMedian(max_iter=k.pop("max_iter", 10), fraction_fit=0.5, **ROBUST, **k),
    "centeredclipping": lambda **k: CenteredClipping(tau=k.pop("tau", 0.1), n_iter=2, fraction_fit=0.5, bucket_size=2,
                                                     **ROBUST, **k),
    "normbounding": lambda **k: NormBounding(bound=k.pop("bound", 0.5), fraction_fit=0.5, **ROBUST, **k),
    "dpfedavg": lambda **k: DPFedAvg(sampling_rate=0.5, clip_norm=k.pop("clip_norm", 0.5), noise_multiplier=0.5,
                                     target_quantile=0.5, **ROBUST, **k),
    "secaggfedavg": lambda **k: SecAggFedAvg(fraction_fit=0.5, threshold=k.pop("threshold", 0.6), clip_norm=1.0,
                                             noise_multiplier=0.5, **ROBUST, **k),
})
CHANGED.update({"robustfedavg": {"server_lr": 0.5}, "fedmedian": {"bucket_size": 3}, "fedtrimmedavg": {"beta": 0.1},
                "krum": {"n_selected": 3}, "bulyan": {"server_lr": 0.5}, "geometricmedian": {"max_iter": 5},
                "centeredclipping": {"tau": 0.2}, "normbounding": {"bound": 1.0}, "dpfedavg": {"clip_norm": 1.0},
                "secaggfedavg": {"threshold": 1.0}})
WRAPPERS = {"secaggfedavg": SecAggClient}  # a strategy whose clients must be wrapped
CLIENT_TYPES = ["list", "on-demand", "processes"]


@pytest.fixture(scope="module")
def data():
    X, y, partition = fl.make_fedprox_synthetic(1.0, 1.0, n_clients=N_CLIENTS, n_features=6, n_classes=4, seed=2)
    return fl.SoftmaxRegression(n_features=6, n_classes=4), X, y, partition


def federation(kind, model, X, y, partition, name=None):
    from stage_helpers import CountingClient

    wrap = WRAPPERS.get(name, lambda client: client)
    clients = [wrap(CountingClient(model, X[p], y[p], cid=k)) for k, p in enumerate(partition)]
    if kind == "on-demand":
        return OnDemand(lambda cid: wrap(CountingClient(model, X[partition[cid]], y[partition[cid]], cid=cid)),
                        len(partition), sizes=[len(p) for p in partition], fingerprint=lambda: "synthetic")
    return ProcessClients(clients) if kind == "processes" else clients


def saved_state(path, server):
    identity = run_identity(server.model, server.strategy, server.clients.fingerprint())
    saved = load_checkpoint(path, identity)
    return saved, unflatten_state(saved.extra_state)


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            assert_same_state(a[key], b[key])
        else:
            assert np.array_equal(a[key], b[key]), key


def test_every_strategy_of_the_package_is_covered():
    assert set(available_strategies()) | {"labelbalancedfedavg"} == set(STRATEGIES)


@pytest.mark.parametrize("kind", CLIENT_TYPES)
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_checkpoint_then_resume_is_bit_identical(data, tmp_path, name, kind):
    model, X, y, partition = data
    whole_path, part_path = tmp_path / "whole.flc", tmp_path / "part.flc"
    whole = Server(model, STRATEGIES[name](), federation(kind, *data, name), checkpoint_path=whole_path,
                   seed=4, test_set=(X, y)).run(ROUNDS)
    Server(model, STRATEGIES[name](), federation(kind, *data, name), checkpoint_path=part_path, seed=4,
           test_set=(X, y)).run(STOP)
    resumed = Server(model, STRATEGIES[name](), federation(kind, *data, name), checkpoint_path=part_path, seed=4,
                     test_set=(X, y)).run(ROUNDS, resume=True)

    assert np.array_equal(resumed.params_, whole.params_)
    assert {k: v for k, v in resumed.history_.items() if k != "wall_seconds"} == \
        {k: v for k, v in whole.history_.items() if k != "wall_seconds"}
    (_, whole_state), (_, resumed_state) = saved_state(whole_path, whole), saved_state(part_path, resumed)
    assert_same_state(resumed_state, whole_state)
    if name == "scaffold":
        assert len(whole_state["clients"]) >= 3 and np.abs(whole_state["strategy"]["control"]).sum() > 0
    with pytest.raises(CheckpointError, match="strategy"):
        Server(model, STRATEGIES[name](**CHANGED[name]) if CHANGED[name] else FedAvgM(), federation(kind, *data, name),
               checkpoint_path=part_path, seed=4).run(ROUNDS, resume=True)


@pytest.mark.parametrize("name", ["fedprox", "scaffold", "labelbalancedfedavg"])
def test_in_process_and_process_clients_give_the_same_history(data, name):
    model, X, y, partition = data
    histories = [Server(model, STRATEGIES[name](), federation(kind, *data, name), seed=4, test_set=(X, y)).run(3)
                 .history_ for kind in CLIENT_TYPES]
    for history in histories[1:]:
        assert {k: v for k, v in history.items() if k != "wall_seconds"} == \
            {k: v for k, v in histories[0].items() if k != "wall_seconds"}


@pytest.mark.parametrize("name", sorted(available_strategies()))
def test_every_constraint_rejects_its_invalid_values(data, name):
    model, X, y, partition = data
    cls = available_strategies()[name]
    for param, constraint in cls.parameter_constraints.items():
        for bad in constraint.invalid_values():
            strategy = cls()
            setattr(strategy, param, bad)
            with pytest.raises((ValueError, TypeError), match=rf"'{param}' parameter of {cls.__name__}"):
                Server(model, strategy, make_clients(model, X, y, partition), seed=0).run(1)


def test_scaffold_refuses_an_update_without_its_control_delta(data):
    model, X, y, partition = data

    class Forgetful(type(make_clients(model, X, y, partition[:1])[0])):
        def fit(self, params, config):
            return tuple(super().fit(params, config))  # a plain triple: the extras are lost

    clients = [Forgetful(model, X[p], y[p], cid=k) for k, p in enumerate(partition)]
    server = Server(model, Scaffold(lr=0.1), clients, on_invalid="drop", seed=0).run(1)
    assert server.history_["n_dropped"][1] == N_CLIENTS
    assert "must carry the extra 'control_delta'" in server.history_["dropped"][1][0][1]
