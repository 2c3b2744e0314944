"""Every platform's start method: the default never forks a multi-threaded parent, an
environment variable overrides it, and the chapters' fault demonstrations work under each."""
import json
import multiprocessing as mp
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import flcourse as fl
from flcourse.distributed import WorkerError
from flcourse.distributed import DataParallelSGD
from flcourse.faults import FaultyModel
from flcourse.runtime import START_METHOD_VARIABLE, default_start_method

PLATFORM_DEFAULT = mp.get_all_start_methods()[0]
METHODS = mp.get_all_start_methods()


def run_python(code: str, **env) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON line, returned here."""
    environment = {k: v for k, v in os.environ.items() if k != START_METHOD_VARIABLE}
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=120, env={**environment, **env})
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_a_single_threaded_parent_uses_the_platforms_default():
    seen = run_python("""
        import json, threading
        from flcourse.runtime import default_start_method
        print(json.dumps({"threads": threading.active_count(), "method": default_start_method()}))
    """)
    assert seen == {"threads": 1, "method": PLATFORM_DEFAULT}


def test_a_multi_threaded_parent_is_never_forked(monkeypatch):
    monkeypatch.delenv(START_METHOD_VARIABLE, raising=False)
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        method = default_start_method()
    finally:
        stop.set()
        thread.join()
    assert method != "fork"
    assert method == ("forkserver" if "forkserver" in METHODS else PLATFORM_DEFAULT)


def test_the_environment_variable_chooses_the_method(monkeypatch):
    for method in METHODS:
        monkeypatch.setenv(START_METHOD_VARIABLE, method)
        assert default_start_method() == method


def test_a_bad_environment_variable_gets_a_clear_error(monkeypatch):
    monkeypatch.setenv(START_METHOD_VARIABLE, "thread")
    with pytest.raises(ValueError, match=r"'FLCOURSE_START_METHOD'.*must be one of .*'thread'"):
        default_start_method()


FORK_FORBIDDEN = """
    import json, os, threading
    import flcourse as fl
    from flcourse.distributed import DataParallelSGD
    from flcourse.federated import FedAvg, make_clients
    from flcourse.federated.server import ProcessClients, Server

    def no_fork():
        raise AssertionError("os.fork() called in a multi-threaded parent")

    if __name__ == "__main__":
        stop = threading.Event()
        threading.Thread(target=stop.wait, daemon=True).start()   # as in a Jupyter kernel
        os.fork = no_fork
        data = fl.load_digits(seed=0)
        model = fl.SoftmaxRegression(n_features=64, n_classes=10)
        trainer = DataParallelSGD(model, n_workers=2, backend="processes", seed=0)
        trainer.fit(data.X_train, data.y_train, n_steps=3)
        clients = make_clients(model, data.X_train, data.y_train,
                               fl.iid_partition(len(data.y_train), 4, seed=0))
        server = Server(model, FedAvg(local_epochs=1), ProcessClients(clients), seed=0)
        server.run(2, progress=False)
        print(json.dumps({"steps": trainer.history_["step"][-1], "rounds": server.history_["round"][-1]}))
"""


def test_the_process_back_ends_do_not_fork_a_multi_threaded_parent(tmp_path):
    script = tmp_path / "threaded_parent.py"  # spawn and forkserver re-import the main module
    script.write_text(textwrap.dedent(FORK_FORBIDDEN))
    run = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", str(script)],
                         capture_output=True, text=True, timeout=180,
                         env={k: v for k, v in os.environ.items() if k != START_METHOD_VARIABLE})
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {"steps": 3, "rounds": 2}


# ---------------------------------------------------------------- FaultyModel

@pytest.fixture(scope="module")
def digits():
    data = fl.load_digits(seed=0)
    return data.X_train, data.y_train, fl.SoftmaxRegression(n_features=64, n_classes=10, l2=0.01)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"fault": "crash"}, ValueError, r"'fault' parameter of FaultyModel must be one of \['exit', 'hang', 'raise'\]"),
    ({"fault": "exit", "worker": -1}, ValueError, r"'worker' parameter of FaultyModel"),
    ({"fault": "exit", "at_step": 0}, ValueError, r"'at_step' parameter of FaultyModel"),
    ({"fault": "exit", "at_step": 2.5}, TypeError, r"'at_step' parameter of FaultyModel"),
    ({"fault": "hang", "hang_seconds": -1.0}, ValueError, r"'hang_seconds' parameter of FaultyModel"),
])
def test_faulty_model_refuses_bad_arguments(digits, kwargs, error, match):
    with pytest.raises(error, match=match):
        FaultyModel(digits[2], **kwargs)


def test_faulty_model_refuses_what_is_not_a_model():
    with pytest.raises(TypeError, match="'model' parameter of FaultyModel"):
        FaultyModel("softmax", fault="exit")


def test_outside_its_worker_the_faulty_model_is_the_model_it_wraps(digits):
    X, y, model = digits
    faulty = FaultyModel(model, fault="raise", worker=0, at_step=1)
    params = model.init_params(seed=0) + 0.01
    for _ in range(3):  # in this process it never misbehaves
        assert np.array_equal(faulty.grad_unchecked(params, X, y), model.grad_unchecked(params, X, y))
    assert faulty.loss(params, X, y) == model.loss(params, X, y)
    assert np.array_equal(faulty.predict(params, X), model.predict(params, X))
    trainer = DataParallelSGD(faulty, n_workers=2, backend="in-process", seed=0)
    reference = DataParallelSGD(model, n_workers=2, backend="in-process", seed=0)
    trainer.fit(X, y, n_steps=5)
    reference.fit(X, y, n_steps=5)
    assert np.array_equal(trainer.params_, reference.params_)


EXPECTED = {"raise": "worker 1 raised an exception", "exit": "worker 1 (pid ",
            "hang": "worker 1 did not answer within timeout=2.0 s"}


@pytest.mark.parametrize("start_method", METHODS)
@pytest.mark.parametrize("fault", ["raise", "exit", "hang"])
def test_each_fault_is_reported_under_each_start_method(digits, fault, start_method):
    X, y, model = digits
    steps, seen = [], {}

    def watch(step, trainer):
        steps.append(step)
        seen.update({p.pid: p for p in trainer.backend_.processes})

    trainer = DataParallelSGD(FaultyModel(model, fault=fault, at_step=3), n_workers=2,
                              backend="processes", start_method=start_method, timeout=2.0, seed=0)
    with pytest.raises(WorkerError) as caught:
        trainer.fit(X, y, n_steps=10, callback=watch)

    message = str(caught.value)
    assert message.startswith(EXPECTED[fault]) and "worker 0" not in message, message
    assert fault != "raise" or "ArithmeticError: injected fault at step 3" in message
    assert fault != "exit" or "exited with code 3" in message
    assert steps == [1, 2]  # the third step is the faulty one
    assert len(seen) == 2 and not any(p.is_alive() for p in seen.values())
