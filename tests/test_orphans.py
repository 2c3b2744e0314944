"""The probe that found the orphans: a CLI run with client processes, killed from outside.

Whatever kills the parent, its client processes and its resource tracker go within 2 s. (The full matrix of faults is in test_fault_matrix.py.)
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fault_helpers import pid_exists

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

REPORTER = """
import json, multiprocessing, multiprocessing.resource_tracker as tracker, sys
import multiprocessing.forkserver as forkserver
import flcourse.federated.runners as runners

def report(self):
    started = enter(self)
    pids = [p.pid for p in self.processes] + [tracker._resource_tracker._pid,
                                              forkserver._forkserver._forkserver_pid]
    print(json.dumps(pids), flush=True)
    return started

if __name__ == "__main__":
    multiprocessing.set_start_method(sys.argv[1])
    enter, runners.ProcessClients.__enter__ = runners.ProcessClients.__enter__, report
    from flcourse.__main__ import main
    sys.exit(main(sys.argv[2:]))
"""


def gone_within(pids, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(pid_exists(pid) and not is_zombie(pid) for pid in pids):
            return True
        time.sleep(0.02)
    return False


def is_zombie(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return False


@pytest.mark.parametrize("sent, start_method", [(signal.SIGKILL, "fork"), (signal.SIGTERM, "fork"),
                                                (signal.SIGINT, "fork"), (signal.SIGKILL, "spawn"),
                                                (signal.SIGKILL, "forkserver"), (signal.SIGTERM, "forkserver")],
                         ids=lambda v: getattr(v, "name", v))
def test_killing_a_cli_run_with_client_processes_leaves_nothing_behind(sent, start_method, tmp_path):
    script = tmp_path / "cli.py"
    script.write_text(REPORTER)
    command = [sys.executable, str(script), start_method, "fedavg", "--processes", "--clients", "6", "--fraction", "0.5",
               "--rounds", "100000", "--no-progress", "--out", str(tmp_path / "run")]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        pids = [pid for pid in json.loads(run.stdout.readline()) if pid]  # no tracker under fork,
        # a forkserver only under forkserver
        time.sleep(1.0)  # rounds are running

        os.kill(run.pid, sent)
        run.wait(timeout=10)
    finally:
        run.kill()

    assert len(pids) == {"fork": 6, "spawn": 7, "forkserver": 8}[start_method]
    assert gone_within(pids, 2.0), [pid for pid in pids if pid_exists(pid)]
