"""A crashed, exiting or hung worker never hangs the server, and nothing is left behind."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from fault_helpers import SENTINEL, FaultyModel, pid_exists

import flcourse as fl
from flcourse.distributed import DataParallelSGD, WorkerError
from flcourse.runtime import SHM_PREFIX


def our_segments():
    return sorted(p.name for p in Path("/dev/shm").glob(SHM_PREFIX + "*"))


@pytest.fixture
def faulty_problem(digits):
    """Worker 1's shard alone holds a sentinel row; full batches reach it at step 1."""
    X = np.c_[digits.X_train[:300], np.zeros(300)]
    X[200, -1] = SENTINEL
    partition = [np.arange(0, 150), np.arange(150, 300)]
    return X, digits.y_train[:300], partition


@pytest.fixture(autouse=True)
def nothing_left_behind():
    before = our_segments()
    yield
    assert our_segments() == before, "a shared-memory segment was left behind"


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
@pytest.mark.parametrize("fault, message", [
    ("raise", r"(?s)worker 1 raised an exception:\n.*ArithmeticError: injected fault.*All workers were stopped"),
    ("exit", r"worker 1 \(pid \d+\) exited with code 3"),
    ("hang", r"worker 1 did not answer within timeout=2.0 s \(hung or too slow\)"),
])
def test_a_failing_worker_is_named_within_the_timeout_and_every_process_stops(fault, message, start_method, faulty_problem):
    X, y, partition = faulty_problem
    model = FaultyModel(n_features=65, n_classes=10, fault=fault)
    trainer = DataParallelSGD(model, n_workers=2, batch_size=300, backend="processes",
                              start_method=start_method, timeout=2.0, seed=0)
    started = time.monotonic()

    with pytest.raises(WorkerError, match=message):
        trainer.fit(X, y, n_steps=3, partition=partition)

    assert time.monotonic() - started < 2.0 + 15  # start-up + timeout + clean-up, never a hang
    assert trainer.backend_.processes == []


@pytest.mark.parametrize("sent, worker, at_step, timeout, message", [
    (signal.SIGKILL, 0, 2, 10.0, r"worker 0 \(pid \d+\) exited with code -9"),  # killed
    (signal.SIGSTOP, 1, 1, 1.0, r"worker 1 did not answer within timeout=1.0 s"),  # frozen
])
def test_a_worker_signalled_from_outside_is_named_and_every_process_stops(
        sent, worker, at_step, timeout, message, faulty_problem):
    X, y, partition = faulty_problem
    trainer = DataParallelSGD(fl.SoftmaxRegression(n_features=65, n_classes=10), n_workers=2,
                              batch_size=300, backend="processes", timeout=timeout)
    pids = []

    def signal_worker(step, trainer):
        pids.extend(p.pid for p in trainer.backend_.processes)
        if step == at_step:
            os.kill(pids[worker], sent)

    with pytest.raises(WorkerError, match=message):
        trainer.fit(X, y, n_steps=5, partition=partition, callback=signal_worker)
    assert not any(pid_exists(pid) for pid in set(pids))


def test_a_worker_that_died_before_the_next_step_is_sent_is_reported(faulty_problem):
    X, y, partition = faulty_problem
    trainer = DataParallelSGD(fl.SoftmaxRegression(n_features=65, n_classes=10), n_workers=2,
                              batch_size=300, backend="processes", timeout=10.0)

    def kill_and_wait(step, trainer):
        process = trainer.backend_.processes[1]
        os.kill(process.pid, signal.SIGKILL)
        process.join()  # dead before the next batch is sent: sending must not raise BrokenPipeError

    with pytest.raises(WorkerError, match=r"worker 1 \(pid \d+\) exited with code -9"):
        trainer.fit(X, y, n_steps=3, partition=partition, callback=kill_and_wait)


def test_keyboard_interrupt_in_the_driver_stops_every_worker(faulty_problem):
    X, y, partition = faulty_problem
    trainer = DataParallelSGD(fl.SoftmaxRegression(n_features=65, n_classes=10), n_workers=2,
                              batch_size=300, backend="processes")
    pids = []

    def interrupt(step, trainer):
        pids.extend(p.pid for p in trainer.backend_.processes)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        trainer.fit(X, y, n_steps=5, partition=partition, callback=interrupt)
    assert pids and not any(pid_exists(pid) for pid in pids)


SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import flcourse as fl
    from flcourse.distributed import DataParallelSGD

    def report(step, trainer):
        if step == 1:
            print(" ".join(str(p.pid) for p in trainer.backend_.processes), flush=True)

    if __name__ == "__main__":
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(2000, 20)), rng.integers(0, 3, 2000)
        model = fl.SoftmaxRegression(n_features=20, n_classes=3)
        DataParallelSGD(model, n_workers=2, batch_size=64, backend="processes",
                        start_method=sys.argv[1]).fit(X, y, n_steps=10**9, callback=report)
""")


@pytest.mark.parametrize("start_method", ["fork", "spawn", "forkserver"])
def test_ctrl_c_on_a_terminal_leaves_no_process_and_no_shared_memory(start_method, tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    # A terminal's foreground program has SIGINT at its default. pytest itself may run with
    # SIGINT ignored (a non-interactive shell ignores it in background jobs), and an ignored
    # signal is inherited across exec: Python would then never raise KeyboardInterrupt.
    run = subprocess.Popen([sys.executable, str(script), start_method], stdout=subprocess.PIPE,
                           text=True, start_new_session=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    worker_pids = [int(pid) for pid in run.stdout.readline().split()]

    os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C does: SIGINT to the whole foreground group
    run.wait(timeout=20)

    assert len(worker_pids) == 2
    deadline = time.monotonic() + 5
    while any(pid_exists(pid) for pid in worker_pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(pid_exists(pid) for pid in worker_pids)
