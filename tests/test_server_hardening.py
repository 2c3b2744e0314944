"""No client can take over or crash the server; one seed gives one result on every engine;
every argument of the server and its clients is checked at the boundary."""
import math
import os
import signal
import time

import numpy as np
import pytest
from fault_helpers import FaultyClient, pid_exists
from test_federated import DETERMINISTIC_KEYS

import flcourse as fl
from flcourse.federated import FedAvg, FedSGD, NumpyClient, make_clients
from flcourse.federated.server import ClientFailure, InProcessClients, ProcessClients, Server



@pytest.fixture(scope="module")
def softmax_setup(digits):
    model = fl.SoftmaxRegression(n_features=64, n_classes=10)
    partition = fl.make_partition("iid", digits.y_train, 10, seed=0)
    return model, digits, make_clients(model, digits.X_train, digits.y_train, partition)


class Alone:
    """Wraps a NumpyClient so the in-process engine cannot group it: it runs alone."""

    def __init__(self, client):
        self.client, self.cid, self.n_samples = client, client.cid, client.n_samples

    def fit(self, params, config):
        return self.client.fit(params, config)

    def evaluate(self, params, config):
        return self.client.evaluate(params, config)


class Claims:
    """A client that trains honestly but reports a chosen n_examples or parameters."""

    def __init__(self, client, *, n_examples=None, params=None, declare=True):
        self.client, self.cid = client, client.cid
        self.n_examples, self.params = n_examples, params
        if declare:
            self.n_samples = client.n_samples

    def fit(self, params, config):
        new, n_examples, metrics = self.client.fit(params, config)
        return (new if self.params is None else self.params(new),
                n_examples if self.n_examples is None else self.n_examples, metrics)

    def evaluate(self, params, config):
        return self.client.evaluate(params, config)


class Hostile(np.ndarray):
    """An ndarray subclass whose arithmetic raises: it must never reach the average."""

    def __array_ufunc__(self, *args, **kwargs):
        raise RuntimeError("hostile arithmetic")


MODELS = [fl.SoftmaxRegression(n_features=64, n_classes=10, l2=0.01),
          fl.MLP(n_features=64, n_hidden=8, n_classes=10),
          fl.LogisticRegression(n_features=64),
          fl.LinearRegression(n_features=64)]


def labels_for(model, y):
    return y % 2 if model.n_classes == 2 else (y.astype(float) if model.n_classes is None else y)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: type(m).__name__)
def test_one_seed_gives_one_result_for_a_subset_of_clients_in_any_order_on_every_engine(model, digits):
    y = labels_for(model, digits.y_train)
    partition = fl.make_partition("iid", digits.y_train, 20, seed=0)  # equal sizes: grouped
    clients = make_clients(model, digits.X_train, y, partition)[8:]  # ids 8..19, not positions
    shuffled = [clients[k] for k in np.random.default_rng(1).permutation(len(clients))]
    strategy = FedAvg(fraction_fit=0.5, local_epochs=2, batch_size=10, lr=0.05)

    def run(engine):
        return Server(model, strategy, engine, seed=4).run(3)

    runs = {"grouped": run(clients), "shuffled": run(shuffled), "alone": run([Alone(c) for c in clients]),
            "processes": run(ProcessClients(shuffled, start_method="fork"))}

    reference = runs.pop("grouped")
    assert max(reference.history_["n_selected"]) == 6
    for name, other in runs.items():
        assert np.array_equal(other.params_, reference.params_), name
        assert other.history_["dropped"] == reference.history_["dropped"], name


def test_a_clients_random_stream_depends_on_its_id_not_its_position(softmax_setup):
    model, _, clients = softmax_setup
    config = {"local_epochs": 1, "batch_size": 5, "lr": 0.1, "seed": 3, "server_round": 1}
    params = np.zeros(model.n_params)

    together = InProcessClients(clients).fit([7, 8], params, config, 1.0)
    later = InProcessClients(clients[7:]).fit([7, 8], params, config, 1.0)

    for cid in (7, 8):
        assert np.array_equal(together[cid][1][0], later[cid][1][0])
        assert np.array_equal(together[cid][1][0], clients[cid].fit(params, config)[0])


def test_an_mlp_server_without_starting_parameters_is_reproducible_from_its_seed(softmax_setup, digits):
    model = fl.MLP(n_features=64, n_hidden=16, n_classes=10)
    clients = make_clients(model, digits.X_train, digits.y_train,
                           fl.make_partition("iid", digits.y_train, 5, seed=0))

    first, second, other = (Server(model, FedSGD(lr=0.5), clients, seed=s).run(2) for s in (0, 0, 1))

    assert np.array_equal(first.params_, second.params_)
    assert not np.array_equal(first.params_, other.params_)


def test_duplicate_client_ids_are_refused(softmax_setup):
    model, digits, clients = softmax_setup
    twin = NumpyClient(model, digits.X_train[:5], digits.y_train[:5], cid=3)

    for engine in (Server, InProcessClients, ProcessClients):
        args = (model, FedSGD(), clients + [twin]) if engine is Server else (clients + [twin],)
        with pytest.raises(ValueError, match=r"'clients' parameter of \w+ must hold clients with "
                                             r"distinct ids. Got client id 3 more than once"):
            engine(*args)


@pytest.mark.parametrize("claim, message", [
    ({"n_examples": 10**300}, r"n_examples as an int in \[1, {n}\]; got an int of magnitude 2\*\*99\d"),
    ({"n_examples": 2**1100}, r"n_examples as an int in \[1, {n}\]; got an int of magnitude 2\*\*1100"),
    ({"n_examples": "n + 1"}, r"n_examples as an int in \[1, {n}\]; got {n_plus_1}"),
    ({"n_examples": -1}, r"n_examples as an int in \[1, {n}\]; got -1"),
    ({"n_examples": 3.0}, r"n_examples as an int in \[1, {n}\]; got 3.0"),
    ({"n_examples": True}, r"n_examples as an int in \[1, {n}\]; got True"),
    ({"params": lambda p: np.full_like(p, 1.7e308)}, r"magnitude 1.7e\+308, over param_bound=1e\+06"),
    ({"params": lambda p: p.view(Hostile)}, r"plain float ndarray of parameters; got Hostile"),
    ({"params": lambda p: p.astype(np.int64)}, r"plain float ndarray of parameters; got ndarray of dtype int64"),
    ({"params": lambda p: np.array([p, p])}, r"has shape \(2, 650\), expected \(650,\)"),
    ({"n_examples": 10**9, "declare": False}, None),  # no declared size: held to max_examples=500
])
def test_a_client_cannot_take_over_the_model_by_what_it_reports(claim, message, softmax_setup):
    model, digits, clients = softmax_setup
    clients, n = list(clients), clients[4].n_samples
    if claim.get("n_examples") == "n + 1":
        claim = {"n_examples": n + 1}
    message = (message or "").format(n=n, n_plus_1=n + 1)
    clients[4] = Claims(clients[4], **claim)
    honest = Server(model, FedSGD(lr=0.5), clients[:4] + clients[5:], seed=0).run(2)
    message = message or r"n_examples as an int in \[1, 500\]; got 1000000000"

    with pytest.raises(ClientFailure, match=r"round failed: update from client 4 (must report |must hold |has |holds )?" + ".*" + message):
        Server(model, FedSGD(lr=0.5), clients, max_examples=500, seed=0).run(2)
    dropped = Server(model, FedSGD(lr=0.5), clients, max_examples=500, on_invalid="drop", seed=0).run(2)

    assert dropped.history_["n_dropped"] == [0, 1, 1]
    np.testing.assert_allclose(dropped.params_, honest.params_, rtol=0, atol=1e-12)


class RaisesWhileChecked(tuple):
    """A fit result whose very inspection raises: that is the client's failure, not the server's."""

    def __len__(self):
        raise MemoryError("inspect me and die")


class SendsTrap:
    def __init__(self, client):
        self.client, self.cid = client, client.cid

    def fit(self, params, config):
        return RaisesWhileChecked(self.client.fit(params, config))


def test_whatever_raises_while_a_result_is_checked_is_that_clients_failure(softmax_setup):
    model, _, clients = softmax_setup
    clients = list(clients)
    clients[2] = SendsTrap(clients[2])

    server = Server(model, FedSGD(lr=0.5), clients, on_invalid="drop", seed=0).run(1)

    assert server.history_["dropped"][1] == [[2, "client 2: checking its reply raised MemoryError: inspect me and die"]]


def test_a_client_that_fails_to_evaluate_is_dropped_or_fails_the_round_like_a_failed_update(softmax_setup):
    model, digits, clients = softmax_setup
    clients = list(clients)
    clients[3] = FaultyClient(clients[3], "raise", from_round=99)
    clients[3].evaluate = lambda params, config: 1 / 0

    server = Server(model, FedSGD(lr=0.5), clients, evaluate_clients=True, on_invalid="drop", seed=0).run(2)

    assert server.history_["eval_dropped"][-1] == [[3, "client 3 raised ZeroDivisionError: division by zero"]]
    assert 0 < server.history_["client_accuracy"][-1] <= 1
    with pytest.raises(ClientFailure, match="round failed: client 3 raised ZeroDivisionError"):
        Server(model, FedSGD(lr=0.5), clients, evaluate_clients=True, seed=0).run(1)


def frozen_client_server(digits):
    model = fl.MLP(n_features=64, n_hidden=1000, n_classes=10)  # 600 KB of parameters
    clients = make_clients(model, digits.X_train[:90], digits.y_train[:90], np.array_split(np.arange(90), 3))
    return model, ProcessClients(clients, start_method="fork")


def test_a_frozen_client_process_never_holds_the_server_past_the_round_timeout(digits):
    model, pool = frozen_client_server(digits)
    timings, pids = [], []

    def freeze_client_1(server_round, server):
        pids.extend(p.pid for p in pool.processes)
        os.kill(pool.processes[1].pid, signal.SIGSTOP)  # a 600 KB send to it cannot finish
        timings.append(time.monotonic())

    server = Server(model, FedSGD(lr=0.1), pool, on_invalid="drop", round_timeout=1.0, seed=0)
    server.run(2, callback=lambda r, s: freeze_client_1(r, s) if r == 1 else timings.append(time.monotonic()))

    assert timings[1] - timings[0] < 1.0 + 1.0
    assert server.history_["dropped"][2] == [[1, "client 1 did not answer within timeout=1.0 s (hung or too slow)"]]
    assert not any(pid_exists(pid) for pid in pids)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"clients": []}, ValueError, r"'clients' parameter of Server must hold at least one client. Got none"),
    ({"test_set": "X"}, TypeError, r"'test_set' parameter of Server must be a pair \(X_test, y_test\) or None. Got str"),
    ({"round_timeout": math.inf}, ValueError, r"'round_timeout' parameter of Server must be a float in \(0, 86400\]. Got inf"),
    ({"round_timeout": 0}, ValueError, r"'round_timeout' parameter of Server must be a float in \(0, 86400\]. Got 0"),
    ({"model": "softmax"}, TypeError, r"'model' parameter of Server must be a flcourse Model. Got str"),
    ({"strategy": object()}, TypeError, r"'strategy' parameter of Server must have a configure_fit method"),
    ({"evaluate_clients": "yes"}, TypeError, r"'evaluate_clients' parameter of Server must be a bool \(True or False\). Got 'yes'"),
    ({"max_examples": 0}, ValueError, r"'max_examples' parameter of Server must be an int in \[1, inf\). Got 0"),
    ({"param_bound": -1.0}, ValueError, r"'param_bound' parameter of Server must be a float in \(0, inf\]. Got -1.0"),
    ({"checkpoint_path": 3}, TypeError, r"'checkpoint_path' parameter of Server must be a str, a path or None. Got int"),
    ({"seed": -1}, TypeError, r"'seed' parameter of Server must be a non-negative int"),
])
def test_bad_server_arguments_get_an_error_naming_the_argument_and_value(kwargs, error, message, softmax_setup):
    model, digits, clients = softmax_setup
    args = {"model": model, "strategy": FedSGD(), "clients": clients, **kwargs}

    with pytest.raises(error, match=message):
        Server(args.pop("model"), args.pop("strategy"), args.pop("clients"), **args).run(1)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"n_rounds": -1}, ValueError, r"'n_rounds' parameter of Server.run must be an int in \[0, inf\). Got -1"),
    ({"resume": 1}, TypeError, r"'resume' parameter of Server.run must be a bool \(True or False\). Got 1"),
    ({"progress": "no"}, TypeError, r"'progress' parameter of Server.run must be a bool \(True or False\). Got 'no'"),
    ({"callback": 5}, TypeError, r"'callback' parameter of Server.run must be callable or None. Got 5 of type int"),
    ({"params": np.zeros(3)}, ValueError, r"'params' parameter of Server.run must be a flat vector of shape \(650,\)"),
])
def test_bad_run_arguments_get_an_error_naming_the_argument_and_value(kwargs, error, message, softmax_setup):
    model, _, clients = softmax_setup
    kwargs = {"n_rounds": 1, **kwargs}

    with pytest.raises(error, match=message):
        Server(model, FedSGD(), clients).run(kwargs.pop("n_rounds"), **kwargs)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"model": "m"}, TypeError, r"'model' parameter of NumpyClient must be a flcourse Model. Got str"),
    ({"cid": -2}, ValueError, r"'cid' parameter of NumpyClient must be an int in \[0, inf\). Got -2"),
    ({"cid": "7"}, TypeError, r"'cid' parameter of NumpyClient must be an int in \[0, inf\). Got '7'"),
    ({"X": np.zeros((3, 5))}, ValueError, r"'X' parameter of \S*NumpyClient must have 64 columns"),
])
def test_bad_client_arguments_get_an_error_naming_the_argument_and_value(kwargs, error, message, softmax_setup):
    model, digits, _ = softmax_setup
    args = {"model": model, "X": digits.X_train[:3], "y": digits.y_train[:3], **kwargs}

    with pytest.raises(error, match=message):
        NumpyClient(args.pop("model"), args.pop("X"), args.pop("y"), **args)


@pytest.mark.parametrize("partition, message", [
    ([np.array([0, 1]), np.array([1, 2])], r"the first repeated, 1, is in part 0 and part 1"),
    ([np.array([0, -1])], r"-1"),
    ([np.array([0.0, 1.0])], r"float"),
])
def test_make_clients_refuses_overlapping_negative_or_float_indices(partition, message, softmax_setup):
    model, digits, _ = softmax_setup

    with pytest.raises((ValueError, TypeError), match=r"'partition' parameter of make_clients.*" + message):
        make_clients(model, digits.X_train, digits.y_train, partition)


def written_checkpoint(softmax_setup, tmp_path, n_rounds=2):
    model, _, clients = softmax_setup
    path = tmp_path / "run.ckpt"
    Server(model, FedSGD(lr=0.5), clients, seed=0, checkpoint_path=path).run(n_rounds)
    return path


@pytest.mark.parametrize("change, message", [
    (lambda m, c: (fl.SoftmaxRegression(n_features=60, n_classes=10), c), r"model SoftmaxRegression's 'n_features' is 64 in the checkpoint and 60 here"),
    (lambda m, c: (fl.SoftmaxRegression(n_features=64, n_classes=10, l2=0.1), c), r"model SoftmaxRegression's 'l2' is 0.0 in the checkpoint and 0.1 here"),
    (lambda m, c: (fl.MLP(n_features=64, n_hidden=8, n_classes=10), c), r"the model class is .*SoftmaxRegression in the checkpoint and .*MLP here"),
    (lambda m, c: (m, c[:5]), r"the client set differs: 10 clients in the checkpoint, 5 here"),
    (lambda m, c: (m, c[1:] + [NumpyClient(m, c[0].X[:-1], c[0].y[:-1], cid=0)]), r"the client set differs: 10 clients in both"),
])
def test_resume_refuses_a_checkpoint_of_another_run_and_names_what_differs(change, message, softmax_setup, tmp_path):
    path = written_checkpoint(softmax_setup, tmp_path)
    model, clients = change(softmax_setup[0], softmax_setup[2])

    with pytest.raises(ValueError, match=r"run.ckpt.*" + message):
        Server(model, FedSGD(lr=0.5), clients, seed=0, checkpoint_path=path).run(4, resume=True)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_resume_refuses_a_damaged_checkpoint_with_one_clear_error_naming_the_file(damage, softmax_setup, tmp_path):
    path = written_checkpoint(softmax_setup, tmp_path)
    data = path.read_bytes()
    path.write_bytes({"truncate": data[:300], "garbage": os.urandom(len(data)), "empty": b""}[damage])
    model, _, clients = softmax_setup

    with pytest.raises(ValueError, match=r"run.ckpt"):
        Server(model, FedSGD(lr=0.5), clients, seed=0, checkpoint_path=path).run(4, resume=True)


def test_resume_needs_at_least_the_checkpoints_rounds(softmax_setup, tmp_path):
    path = written_checkpoint(softmax_setup, tmp_path, n_rounds=3)
    model, _, clients = softmax_setup

    with pytest.raises(ValueError, match=r"'n_rounds' parameter of Server.run must be at least the round of the checkpoint to resume \(3\). Got 2"):
        Server(model, FedSGD(lr=0.5), clients, seed=0, checkpoint_path=path).run(2, resume=True)


def test_a_resumed_run_after_a_crash_ends_bit_identical_to_an_uninterrupted_one(softmax_setup, tmp_path):
    model, digits, clients = softmax_setup
    path = tmp_path / "run.ckpt"
    strategy = FedAvg(fraction_fit=0.3, local_epochs=2, batch_size=10, lr=0.1)

    def crash_after_round_3(server_round, server):
        if server_round == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Server(model, strategy, clients, test_set=(digits.X_test, digits.y_test), seed=5,
               checkpoint_path=path).run(6, callback=crash_after_round_3)
    resumed = Server(model, strategy, clients, test_set=(digits.X_test, digits.y_test), seed=5,
                     checkpoint_path=path).run(6, resume=True)
    straight = Server(model, strategy, clients, test_set=(digits.X_test, digits.y_test), seed=5).run(6)

    assert np.array_equal(resumed.params_, straight.params_)
    assert {k: resumed.history_[k] for k in DETERMINISTIC_KEYS} == {k: straight.history_[k] for k in DETERMINISTIC_KEYS}


class Vandal:
    """A client that scribbles over the parameters and config it is given, then fails."""

    def __init__(self, client):
        self.client, self.cid, self.n_samples = client, client.cid, client.n_samples

    def fit(self, params, config):
        params += 1e5
        config["lr"] = 1e9
        raise RuntimeError("vandalised")

    def evaluate(self, params, config):
        return self.client.evaluate(params, config)


def test_a_client_that_writes_into_what_it_was_sent_changes_nothing_for_the_server_or_the_others(softmax_setup):
    model, _, clients = softmax_setup
    honest = Server(model, FedSGD(lr=0.5), clients[:3] + clients[4:], seed=0).run(2)
    vandalised = [Alone(c) for c in clients]
    vandalised[3] = Vandal(clients[3])  # runs before the clients after it, alone like them

    server = Server(model, FedSGD(lr=0.5), vandalised, on_invalid="drop", seed=0).run(2)

    np.testing.assert_allclose(server.params_, honest.params_, rtol=0, atol=1e-12)


def test_resume_refuses_clients_of_the_same_ids_and_sizes_with_other_data(softmax_setup, tmp_path):
    path = written_checkpoint(softmax_setup, tmp_path)
    model, digits, clients = softmax_setup
    others = [NumpyClient(model, c.X[::-1], c.y[::-1], cid=c.cid) for c in clients]

    with pytest.raises(ValueError, match=r"the client set differs: 10 clients in both, but other ids, numbers of examples or data"):
        Server(model, FedSGD(lr=0.5), others, seed=0, checkpoint_path=path).run(4, resume=True)


@pytest.mark.parametrize("clients, message", [
    (None, r"'clients' parameter of Server must be a list of clients, .*Got NoneType"),
    (3, r"'clients' parameter of Server must be a list of clients, .*Got int"),
    (["a", "b"], r"'clients' parameter of Server must hold clients with a fit method \(NumpyClient, ...\). Got str at position 0"),
])
def test_clients_that_are_not_clients_are_refused_before_any_round(clients, message, softmax_setup):
    with pytest.raises(TypeError, match=message):
        Server(softmax_setup[0], FedSGD(), clients)


def test_a_generator_of_clients_is_a_list_of_clients(softmax_setup):
    model, _, clients = softmax_setup

    from_generator = Server(model, FedSGD(lr=0.5), (c for c in clients), seed=0).run(1)

    assert np.array_equal(from_generator.params_, Server(model, FedSGD(lr=0.5), clients, seed=0).run(1).params_)


@pytest.mark.parametrize("path, message", [
    (lambda tmp: tmp, r"must name a file in an existing folder. Got '.*', a folder, instead"),
    (lambda tmp: tmp / "file" / "ckpt", r"must name a file in an existing folder. Got '.*', in .*file, which is not a folder"),
])
def test_a_checkpoint_path_that_cannot_be_a_file_is_refused_before_any_round(path, message, softmax_setup, tmp_path):
    (tmp_path / "file").write_text("")
    model, _, clients = softmax_setup

    with pytest.raises(ValueError, match=r"'checkpoint_path' parameter of Server " + message):
        Server(model, FedSGD(), clients, checkpoint_path=path(tmp_path)).run(1)


@pytest.mark.parametrize("test_set, message", [
    (lambda d: (d.X_test[:, :5], d.y_test), r"'test_set\[0\]' parameter of Server must have 64 columns"),
    (lambda d: (d.X_test, d.y_test + 10), r"'test_set\[1\]' parameter of Server must hold labels in \[0, 9\]"),
])
def test_a_bad_test_set_is_named_as_the_test_set(test_set, message, softmax_setup):
    model, digits, clients = softmax_setup

    with pytest.raises(ValueError, match=message):
        Server(model, FedSGD(), clients, test_set=test_set(digits)).run(1)


@pytest.mark.parametrize("args, error, message", [
    ((0, 0.5), ValueError, r"'n_clients' parameter of sample_clients must be an int in \[1, inf\). Got 0"),
    ((10, -1.0), ValueError, r"'fraction' parameter of sample_clients must be a float in \(0, 1\]. Got -1.0"),
    ((10, float("nan")), ValueError, r"'fraction' parameter of sample_clients must be a float in \(0, 1\]. Got nan"),
    ((10, 0.5, "seed"), TypeError, r"'rng' parameter of sample_clients must be a non-negative int, a numpy.random.Generator or None"),
])
def test_sample_clients_checks_its_arguments(args, error, message):
    from flcourse.federated import sample_clients

    with pytest.raises(error, match=message):
        sample_clients(*args[:2], args[2] if len(args) > 2 else np.random.default_rng(0))


@pytest.mark.parametrize("call, error, message", [
    (lambda c, m: c.fit(np.zeros(3), {}), ValueError, r"'params' parameter of NumpyClient.fit must be a flat vector of shape \(650,\)"),
    (lambda c, m: c.evaluate(np.zeros(3), {}), ValueError, r"'params' parameter of NumpyClient.evaluate must be a flat vector"),
    (lambda c, m: c.fit(np.zeros(m.n_params), {}), ValueError,
     r"'config' parameter of NumpyClient.fit must hold 'local_epochs', 'batch_size', 'lr' and 'seed'. Got no 'local_epochs', 'batch_size', 'lr', 'seed'"),
    (lambda c, m: c.fit(np.zeros(m.n_params), {"local_epochs": 1, "batch_size": 0, "lr": 0.1, "seed": 0}), ValueError,
     r"'config\[\"batch_size\"\]' parameter of NumpyClient.fit must be an int in \[1, inf\). Got 0"),
    (lambda c, m: c.fit(np.zeros(m.n_params), None), TypeError, r"'config' parameter of NumpyClient.fit must be a dict. Got NoneType"),
])
def test_a_client_called_by_hand_checks_its_arguments(call, error, message, softmax_setup):
    model, _, clients = softmax_setup

    with pytest.raises(error, match=message):
        call(clients[0], model)


def test_make_clients_refuses_an_empty_part(softmax_setup):
    model, digits, _ = softmax_setup

    with pytest.raises(ValueError, match=r"'partition' parameter of make_clients must give every client at least one sample. Got an empty part 1"):
        make_clients(model, digits.X_train, digits.y_train, [np.arange(5), np.array([], dtype=int)])


def test_a_diverging_client_is_refused_without_a_numpy_warning(softmax_setup, recwarn):
    model, _, clients = softmax_setup

    server = Server(model, FedAvg(local_epochs=3, batch_size=10, lr=1e300), clients, on_invalid="drop", seed=0).run(1)

    assert server.history_["n_dropped"] == [0, 10]
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
