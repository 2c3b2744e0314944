import threading
from itertools import islice

import numpy as np
import pytest
from fault_helpers import pid_exists

import flcourse as fl
from flcourse.distributed import DataParallelSGD, ring_allreduce, ring_allreduce_in_place, traffic_per_step

N_STEPS, LR, BATCH = 50, 0.3, 48


@pytest.fixture(scope="module")
def problem(digits):
    model = fl.SoftmaxRegression(n_features=64, n_classes=10, l2=1e-3)
    return model, digits.X_train, digits.y_train


def serial_sgd(model, X, y, n_steps=N_STEPS, seed=0):
    params = model.init_params()
    for batch in islice(fl.minibatches(len(y), BATCH, n_epochs=n_steps, seed=seed), n_steps):
        params = params - LR * model.grad(params, X[batch], y[batch])
    return params


def unequal_partition(n_samples, n_workers):
    return fl.quantity_skew_partition(n_samples, n_workers, beta=0.7, seed=n_workers)


@pytest.fixture(scope="module")
def serial(problem):
    return serial_sgd(*problem)


@pytest.mark.parametrize("n_workers", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("backend, aggregation", [
    ("in-process", "server"), ("in-process", "ring"), ("processes", "server"), ("processes", "ring"),
])
def test_data_parallel_sgd_equals_serial_sgd(backend, aggregation, n_workers, problem, serial):
    model, X, y = problem
    partition = unequal_partition(len(y), n_workers)
    trainer = DataParallelSGD(model, n_workers=n_workers, lr=LR, batch_size=BATCH, backend=backend,
                              aggregation=aggregation, seed=0, timeout=30)

    trainer.fit(X, y, n_steps=N_STEPS, partition=partition)

    assert len({len(p) for p in partition}) > 1 or n_workers == 1  # shards of unequal size
    np.testing.assert_allclose(trainer.params_, serial, rtol=0, atol=1e-10)


@pytest.mark.parametrize("n_workers", [1, 2, 3, 4, 8])
def test_dask_data_parallel_sgd_equals_serial_sgd(n_workers, dask_scheduler, problem, serial):
    model, X, y = problem
    trainer = DataParallelSGD(model, n_workers=n_workers, lr=LR, batch_size=BATCH, backend="dask",
                              scheduler_address=dask_scheduler, seed=0, timeout=30)

    trainer.fit(X, y, n_steps=N_STEPS, partition=unequal_partition(len(y), n_workers))

    np.testing.assert_allclose(trainer.params_, serial, rtol=0, atol=1e-10)


@pytest.mark.parametrize("aggregation", ["server", "ring"])
@pytest.mark.parametrize("start_method", ["fork", "spawn", "forkserver"])
def test_process_backend_works_under_every_start_method(start_method, aggregation, problem, serial):
    model, X, y = problem
    trainer = DataParallelSGD(model, n_workers=3, lr=LR, batch_size=BATCH, backend="processes",
                              aggregation=aggregation, start_method=start_method, seed=0, timeout=60)

    pids = []
    trainer.fit(X, y, n_steps=N_STEPS, partition=unequal_partition(len(y), 3),
                callback=lambda step, t: pids.extend(p.pid for p in t.backend_.processes if step == 1))

    np.testing.assert_allclose(trainer.params_, serial, rtol=0, atol=1e-10)
    assert len(pids) == 3 and not any(pid_exists(pid) for pid in pids)


def test_same_seed_gives_bit_identical_parameters_on_every_backend(problem, dask_scheduler):
    model, X, y = problem
    results = {}
    for backend in ("in-process", "processes", "dask"):
        trainer = DataParallelSGD(model, n_workers=3, lr=LR, batch_size=BATCH, backend=backend,
                                  scheduler_address=dask_scheduler, seed=5)
        results[backend] = trainer.fit(X, y, n_steps=20).params_

    assert np.array_equal(results["in-process"], results["processes"])
    assert np.array_equal(results["in-process"], results["dask"])


def test_dask_backend_starts_and_closes_its_own_local_cluster(problem, serial):
    model, X, y = problem
    trainer = DataParallelSGD(model, n_workers=2, lr=LR, batch_size=BATCH, backend="dask", seed=0)

    trainer.fit(X, y, n_steps=N_STEPS)

    np.testing.assert_allclose(trainer.params_, serial, rtol=0, atol=1e-10)


@pytest.mark.parametrize("n_peers", [1, 2, 3, 4, 7, 8])
@pytest.mark.parametrize("size", [1, 5, 64, 650])
def test_ring_allreduce_equals_the_plain_sum(n_peers, size, rng):
    arrays = rng.normal(size=(n_peers, size))

    results, sent = ring_allreduce(arrays)

    for result in results:
        np.testing.assert_allclose(result, arrays.sum(axis=0), rtol=1e-13, atol=1e-13)
    assert sent.sum() == 2 * (n_peers - 1) * size * 8


@pytest.mark.parametrize("n_peers", [1, 2, 3, 5])
@pytest.mark.parametrize("size", [1, 4, 65])
def test_the_in_place_ring_of_the_workers_gives_what_ring_allreduce_gives_bit_for_bit(n_peers, size, rng):
    arrays = rng.normal(size=(n_peers, size))
    rows, barrier = arrays.copy(), threading.Barrier(n_peers)
    peers = [threading.Thread(target=ring_allreduce_in_place, args=(rows, k, barrier, 10.0))
             for k in range(n_peers)]

    for peer in peers:
        peer.start()
    for peer in peers:
        peer.join()

    np.testing.assert_array_equal(rows, np.stack(ring_allreduce(arrays)[0]))


def test_ring_sends_2_k_minus_1_over_k_of_the_vector_per_peer_and_the_server_k_vectors():
    ring, server = traffic_per_step(800, 4, "ring"), traffic_per_step(800, 4, "server")

    np.testing.assert_array_equal(ring["workers"], [2 * 3 / 4 * 800 * 8] * 4)
    assert ring["server"] == 0
    assert server["server"] == 4 * 800 * 8 and list(server["workers"]) == [800 * 8] * 4


def test_history_counts_bytes_and_seconds(problem):
    model, X, y = problem
    trainer = DataParallelSGD(model, n_workers=4, lr=LR, batch_size=BATCH, seed=0)

    trainer.fit(X, y, n_steps=10, eval_every=5, eval_set=(X[:100], y[:100]))

    history = trainer.history_
    assert history["step"] == [0, 5, 10]
    assert history["bytes_sent"] == [0.0, 5 * trainer.traffic_["total"], 10 * trainer.traffic_["total"]]
    assert np.all(np.diff(history["wall_seconds"]) > 0)
    assert np.all(np.array(history["compute_seconds"]) <= np.array(history["wall_seconds"]))
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert "test_accuracy" in history
    assert len(trainer.step_seconds_["wall"]) == 10
    assert sum(trainer.step_seconds_["wall"]) == pytest.approx(history["wall_seconds"][-1])


def test_callback_sees_every_step(problem):
    model, X, y = problem
    seen = []

    DataParallelSGD(model, n_workers=2, batch_size=BATCH, seed=0).fit(
        X, y, n_steps=4, callback=lambda step, trainer: seen.append(step))

    assert seen == [1, 2, 3, 4]


# Bad input


@pytest.mark.parametrize("kwargs, fit_kwargs, message", [
    ({"n_workers": 0}, {}, r"'n_workers' parameter of DataParallelSGD must be an int in \[1, 1347\]. Got 0"),
    ({"n_workers": 2000}, {}, r"'n_workers' parameter of DataParallelSGD must be an int in \[1, 1347\]. Got 2000"),
    ({"n_workers": 4, "batch_size": 3}, {}, r"'batch_size' parameter of DataParallelSGD must be an int in \[4, inf\). Got 3"),
    ({"lr": -0.1}, {}, r"'lr' parameter of DataParallelSGD must be a float in \(0, inf\). Got -0.1"),
    ({"backend": "gpu"}, {}, r"'backend' parameter of DataParallelSGD must be one of \['dask', 'in-process', 'processes'\]. Got 'gpu'"),
    ({"aggregation": "tree"}, {}, r"'aggregation' parameter of DataParallelSGD must be one of \['ring', 'server'\]. Got 'tree'"),
    ({"backend": "processes", "start_method": "thread"}, {}, r"'start_method' parameter of ProcessBackend must be one of .*Got 'thread'"),
    ({"n_workers": 2}, {"partition": [np.arange(1347), np.array([], dtype=int)]},
     r"'partition' parameter of DataParallelSGD.fit must give every worker at least one sample. Got 0 samples for worker 1"),
    ({"n_workers": 3}, {"partition": [np.arange(600), np.arange(600, 1347)]},
     r"'partition' parameter of DataParallelSGD.fit must hold one index array per worker \(3\). Got 2"),
    ({"backend": "dask", "aggregation": "ring"}, {}, r"'aggregation' parameter of DataParallelSGD must be 'server' with backend='dask'"),
])
def test_bad_arguments_are_rejected_with_a_clear_message(kwargs, fit_kwargs, message, problem):
    model, X, y = problem

    with pytest.raises(ValueError, match=message):
        DataParallelSGD(model, **kwargs).fit(X, y, n_steps=2, **fit_kwargs)


def test_an_unreachable_dask_scheduler_address_is_rejected():
    model = fl.SoftmaxRegression(n_features=2, n_classes=2)
    trainer = DataParallelSGD(model, backend="dask", scheduler_address="tcp://127.0.0.1:9", timeout=2)

    with pytest.raises(ValueError, match=r"'scheduler_address' parameter of DataParallelSGD must be the address of a running Dask scheduler. Got 'tcp://127.0.0.1:9'"):
        trainer.fit(np.eye(2), [0, 1], n_steps=1)
