"""The fault-injection matrix: however a worker or a client fails, and whatever then happens
to the parent, the failure is named in time and nothing is left behind.

{worker, client} x {raise, exit, sigkill, sigstop, stall, huge} x {parent alive, SIGTERM,
SIGKILL} x {fork, spawn}: 72 cases, and 12 more under forkserver ({raise, exit, stall} x
{parent alive, SIGKILL}), each in a fresh parent process (fault_matrix_parent.py,
whose docstring says how each fault is made). Peer 1 fails in the second step or round; the
first, healthy one runs with a generous timeout, the faulty one with 1 s (10 s when the
parent is to be signalled, which it is long before).

- Parent alive: it raises WorkerError / ClientFailure naming peer 1 (and not peer 0) within
  timeout + 1 s of the faulty exchange starting; the error reaches the caller after the
  clean-up, which gives the healthy peer CLOSE_GRACE s to stop (+ 1.5 s to kill and reap
  the peers on a loaded machine); the parent exits with 0.
- Parent signalled 0.3 s into the faulty exchange: after SIGTERM it exits with code 143, the
  SystemExit raised inside the exchange; SIGKILL just kills it.
- Afterwards: when the parent exits on its own (alive, SIGTERM) its children are reaped and
  its shared memory is unlinked at once, and nothing on its stderr says "Traceback" or
  "leaked"; in every case no child, resource tracker, forkserver or segment of the case is
  left 2 s after the parent ended. A zombie counts as gone: it has exited, and init reaps it
  (the summary counts those seen; none outlived a run here).

The cases run concurrently (CONCURRENCY at a time, FAULT_MATRIX_CONCURRENCY overrides it) in
threads of this process, and each test waits for its own. The other tests switch one
protection of the runtime off (FLCOURSE_FAULT_SABOTAGE, see the parent script) and check that
the matrix then fails; setting that variable before running this file shows the whole
matrix without the protection. The summary line (latencies, times, zombies) is printed after
the module's tests; FAULT_MATRIX_LOG=<path> saves every outcome as JSON.
"""
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fault_helpers import FAULTS, pid_exists, process_start_time, process_state

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals (SIGKILL, SIGSTOP, SIGTERM)")

PARENT = Path(__file__).with_name("fault_matrix_parent.py")
KINDS, START_METHODS, MODES = ("worker", "client"), ("fork", "spawn"), ("alive", "sigterm", "sigkill")
CONCURRENCY = int(os.environ.get("FAULT_MATRIX_CONCURRENCY", 12))  # parents (2 peers each) at once
SIGNAL_AFTER = 0.3  # seconds into the faulty exchange at which the parent is signalled
GONE_WITHIN = 2.0  # seconds after a parent SIGKILL by which everything must have gone
STARTUP = 60.0  # seconds for a parent to reach the faulty exchange (spawn under load)
HUNG = 10.0  # seconds after which a parent that should have exited is declared hung
CLOSE_GRACE = 1.0  # seconds ProcessPool.close gives its processes to stop before killing them
PYCACHE = str(Path(tempfile.gettempdir(), "flcourse-fault-matrix-pycache"))
ERRORS = {"worker": "WorkerError", "client": "ClientFailure"}


@dataclass(frozen=True)
class Case:
    """One cell of the matrix; ``sabotage`` switches a protection off (see the parent script)."""

    kind: str
    fault: str
    start_method: str
    mode: str
    sabotage: str = ""

    def __str__(self):
        return "-".join(filter(None, (self.kind, self.start_method, self.mode, self.fault, self.sabotage)))


@dataclass
class Outcome:
    """What one case did: the parent's lines, its exit code, and what remained afterwards."""

    case: Case
    lines: dict = field(default_factory=dict)  # event -> JSON line
    returncode: int | None = None
    stderr: str = ""
    gone_after: dict = field(default_factory=dict)  # resource -> seconds after the parent ended
    at_end: list = field(default_factory=list)  # what still existed as the parent ended
    leftovers: list = field(default_factory=list)
    zombies: list = field(default_factory=list)
    seconds: float = 0.0  # from launching the parent to the end of the watch


def _skip_reason(case):
    if case.start_method not in multiprocessing.get_all_start_methods():
        return f"start method {case.start_method!r} is not available on {sys.platform}"
    if case.fault == "sigstop" and case.mode == "sigkill" and not case.sabotage \
            and not sys.platform.startswith("linux"):
        return "only PR_SET_PDEATHSIG (Linux) ends a stopped child whose parent was killed"
    return None


def _param(case, *values, known_bug=None):
    marks = [pytest.mark.skip(reason=reason)] if (reason := _skip_reason(case)) else []
    if known_bug:
        marks.append(pytest.mark.xfail(strict=True, reason=known_bug))
    return pytest.param(case, *values, id=str(case), marks=marks)


KNOWN_BUGS = {}  # str(case) -> why the runtime fails it today (xfail, strict); none at present

MATRIX = [_param(case, known_bug=KNOWN_BUGS.get(str(case)))
          for case in (Case(kind, fault, start_method, mode) for kind in KINDS
                       for start_method in START_METHODS for mode in MODES for fault in FAULTS)]

# forkserver (the default for a multi-threaded parent on Linux, and from Python 3.14): the
# peers are the server's children, not the parent's
MATRIX += [_param(Case(kind, fault, "forkserver", mode)) for kind in KINDS
           for mode in ("alive", "sigkill") for fault in ("raise", "exit", "stall")]

SABOTAGED = [  # (case, what must then go wrong)
    (Case("worker", "stall", "spawn", "sigkill", "die-with-parent"), "still running"),
    (Case("client", "sigstop", "fork", "sigkill", "die-with-parent"), "still running"),
    (Case("worker", "raise", "fork", "sigterm", "sigterm-exit"), "exit code"),
    (Case("client", "stall", "spawn", "alive", "deadline"), "reported after"),
]


# Without PR_SET_PDEATHSIG (macOS, BSD; simulated here) a forked child cannot rely on
# multiprocessing's sentinel alone: every later-forked sibling inherits its write end, so a
# stopped sibling would keep it open. The parent-watching thread also sees its parent change.
BLINDED = [_param(Case(kind, "sigstop", start_method, "sigkill", "pdeathsig"))
           for kind in KINDS for start_method in START_METHODS]

# Under forkserver without PR_SET_PDEATHSIG (macOS), a busy peer outlives the dead server and
# parent unless its thread watching the parent's pid ends it.
WATCHED = [_param(Case(kind, "stall", "forkserver", "sigkill", "pdeathsig")) for kind in KINDS]


# ---------------------------------------------------------------- running the cases


def run_case(case: Case) -> Outcome:
    """Run ``case`` in a fresh parent, signal it if its mode says so, watch what remains."""
    outcome, launched = Outcome(case), time.monotonic()
    sabotage = case.sabotage or os.environ.get("FLCOURSE_FAULT_SABOTAGE", "")
    env = dict(os.environ, PYTHONUNBUFFERED="1", FLCOURSE_FAULT_SABOTAGE=sabotage)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # compile flcourse once, not in each of ~250
    env["PYTHONPYCACHEPREFIX"] = PYCACHE  # processes (0.1 s each), in a cache outside the checkout
    with tempfile.TemporaryDirectory() as tmp:
        out, err = Path(tmp, "stdout"), Path(tmp, "stderr")
        with out.open("w") as stdout, err.open("w") as stderr:  # files: a leftover child
            parent = subprocess.Popen(  # holding a pipe could block us
                [sys.executable, str(PARENT), case.kind, case.fault, case.start_method, case.mode],
                stdout=stdout, stderr=stderr, env=env, cwd=PARENT.parent)
        resources = _wait_in_place(parent, out)
        ended = _end_parent(parent, case.mode, resources is not None)
        outcome.returncode = parent.returncode
        outcome.lines.update(_lines(out))
        outcome.stderr = err.read_text()
    if resources is not None:
        _watch(resources, ended, outcome)
    outcome.seconds = time.monotonic() - launched
    return outcome


def _wait_in_place(parent, out):
    """The case's resources once the parent has printed them (None if it never does):
    {name: ("pid", pid, start time) or ("segment", name, None)}."""
    deadline = time.monotonic() + STARTUP
    while "in_place" not in (lines := _lines(out)):
        if parent.poll() is not None or time.monotonic() > deadline:
            return None
        time.sleep(0.02)
    line = lines["in_place"]
    pids = {f"child {pid}": pid for pid in line["children"]}
    pids.update({f"{name} {line[name]}": line[name] for name in ("resource_tracker", "forkserver")
                 if line[name] is not None})
    resources = {name: ("pid", pid, process_start_time(pid)) for name, pid in pids.items()}
    resources.update({f"segment {name}": ("segment", name, None) for name in line["segments"]})
    return resources


def _end_parent(parent, mode, in_place):
    """Signal the parent (mode "sigterm" / "sigkill") and wait for it; return when it ended
    (monotonic): when it was sent SIGKILL, else when it exited. A parent still running HUNG s
    later is asked for its threads' tracebacks (on its stderr), then killed."""
    killed = None
    if mode != "alive" and in_place:
        time.sleep(SIGNAL_AFTER)
        killed = time.monotonic() if mode == "sigkill" else None
        parent.send_signal(signal.SIGTERM if mode == "sigterm" else signal.SIGKILL)
    try:
        parent.wait(timeout=HUNG)
    except subprocess.TimeoutExpired:
        parent.send_signal(signal.SIGUSR1)  # faulthandler: where it hangs
        time.sleep(0.5)
        parent.kill()
        parent.wait()
    return killed or time.monotonic()


def _lines(path):
    lines = {}
    for text in path.read_text().splitlines():
        try:
            line = json.loads(text)
        except ValueError:
            continue
        if isinstance(line, dict) and "event" in line:
            lines[line["event"]] = line
    return lines


def _watch(resources, ended, outcome):
    """Record when each resource went (seconds after ``ended``); kill and unlink what remains
    after GONE_WITHIN s, so that one failed case does not leak into the others."""
    waiting = dict(resources)
    outcome.at_end = sorted(name for name, resource in resources.items()
                            if _state(resource) not in (None, "Z"))
    while waiting:
        for name, resource in list(waiting.items()):
            state = _state(resource)
            if state == "Z" and name not in outcome.zombies:
                outcome.zombies.append(name)
            if state is None or state == "Z":
                outcome.gone_after[name] = time.monotonic() - ended
                del waiting[name]
        if not waiting or time.monotonic() > ended + GONE_WITHIN:
            break
        time.sleep(0.02)
    outcome.leftovers = sorted(waiting)
    for _, what, started in waiting.values():
        _remove(what, started)


def _state(resource):
    """None once a process or segment is gone, "Z" for a zombie, else what says it is there
    (the state letter from /proc on Linux)."""
    kind, what, started = resource
    if kind == "segment":
        return "present" if _segment_exists(what) else None
    if sys.platform.startswith("linux"):
        return process_state(what, started)
    return "present" if pid_exists(what) else None


def _segment_exists(name):
    import _posixshmem

    try:
        fd = _posixshmem.shm_open("/" + name, os.O_RDONLY)
    except FileNotFoundError:
        return False
    os.close(fd)
    return True


def _remove(what, started):
    """Kill a leftover process (if its pid still names it) or unlink a leftover segment."""
    import _posixshmem

    try:
        if isinstance(what, str):
            _posixshmem.shm_unlink("/" + what)
        elif not sys.platform.startswith("linux") or process_state(what, started) is not None:
            os.kill(what, signal.SIGKILL)
    except (FileNotFoundError, ProcessLookupError):
        pass


# ---------------------------------------------------------------- judging a case


def problems(outcome: Outcome) -> list[str]:
    """Every promise of the runtime that ``outcome`` breaks (empty: the case passed)."""
    case, lines = outcome.case, outcome.lines
    if "in_place" not in lines:
        return [f"the parent never reached the faulty exchange (exit code {outcome.returncode}):\n"
                f"{outcome.stderr[-3000:]}"]
    found = (_reported(case, lines.get("outcome"), outcome.returncode) if case.mode == "alive"
             else _signalled(case, lines.get("outcome"), outcome.returncode))
    running = [name for name in outcome.at_end if name.startswith(("child", "segment"))]
    if case.mode != "sigkill" and running:
        found.append(f"the parent exited before stopping its children and freeing its shared "
                     f"memory: {running} remain")
    warnings = [w for w in ("Traceback", "leaked") if w in outcome.stderr]
    if case.mode != "sigkill" and warnings:
        found.append(f"the parent or a child wrote {' and '.join(map(repr, warnings))} on stderr")
    if outcome.leftovers:
        found.append(f"still running or present {GONE_WITHIN} s after the parent ended: "
                     f"{outcome.leftovers}")
    if found:
        found.append(f"stderr of the parent:\n{outcome.stderr[-3000:]}")
    return found


def _reported(case, line, returncode):
    """Parent alive: the error names peer 1 (and not peer 0) within timeout + 1 s; exit 0."""
    found = [] if returncode == 0 else [f"the parent exited with exit code {returncode}, not 0"]
    if line is None or line["outcome"] != ERRORS[case.kind]:
        return found + [f"expected {ERRORS[case.kind]} naming {case.kind} 1, got {line}"]
    first_line = line["message"].splitlines()[0]
    if f"{case.kind} 1 " not in first_line or f"{case.kind} 0 " in line["message"]:
        found.append(f"the error does not name {case.kind} 1 alone: {first_line!r}")
    reported, caught, timeout = line["reported"], line["elapsed"], line["timeout"]
    if reported is None or reported > timeout + 1.0:
        found.append(f"reported after {reported} s, over timeout + 1 = {timeout + 1} s")
    if caught > timeout + 1.0:
        found.append(f"the caller got the error after {caught:.2f} s, over timeout + 1 = {timeout + 1} s")
    if reported is not None and caught - reported > CLOSE_GRACE + 1.5:
        found.append(f"the clean-up took {caught - reported:.2f} s, over the {CLOSE_GRACE} s the "
                     f"healthy peers get to stop + 1.5 s to kill and reap them")
    return found


def _signalled(case, line, returncode):
    """Parent signalled inside the faulty exchange: SIGTERM exits with 143 through the pool's
    clean-up; SIGKILL just kills it."""
    if case.mode == "sigkill":
        return [] if returncode == -signal.SIGKILL else [f"exit code {returncode} after SIGKILL"]
    found = [] if returncode == 143 else [f"exit code {returncode} after SIGTERM, not 143"]
    if line is None or line["outcome"] != "SystemExit" or not line["in_exchange"]:
        found.append(f"SIGTERM did not raise SystemExit inside the faulty exchange: {line}")
    return found


# ---------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def outcomes(request):
    """{case: future Outcome}: every selected case of this module, started at once."""
    cases = [item.callspec.params["case"] for item in request.session.items
             if getattr(item, "module", None) is request.module and "case" in getattr(item, "callspec", {}).params
             and not item.get_closest_marker("skip")]
    with ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="fault-case") as pool:
        futures = {case: pool.submit(run_case, case) for case in cases}
        started = time.monotonic()
        yield futures
        results = [f.result() for f in futures.values()]
        report = summary(results, time.monotonic() - started)
    if os.environ.get("FAULT_MATRIX_LOG"):  # every outcome, for a closer look
        Path(os.environ["FAULT_MATRIX_LOG"]).write_text(json.dumps([_as_json(r) for r in results]))
    plugins = request.config.pluginmanager
    with plugins.get_plugin("capturemanager").global_and_fixture_disabled():
        plugins.get_plugin("terminalreporter").write_line(report)


def _as_json(outcome):
    fields = {**vars(outcome), "case": str(outcome.case), "problems": problems(outcome)}
    return {name: value for name, value in fields.items() if name != "stderr"}


def summary(results, seconds) -> str:
    """One line: the worst latencies over the timeout (to the report, to the caller), the
    slowest disappearance of a child after a parent SIGKILL, the zombies seen."""
    if not results:
        return "\nfault matrix: no case selected"
    matrix = [r for r in results if not r.case.sabotage]
    lines = [r.lines["outcome"] for r in matrix
             if r.lines.get("outcome", {}).get("reported") is not None]
    reported = [line["reported"] - line["timeout"] for line in lines]
    caught = [line["elapsed"] - line["timeout"] for line in lines]
    gone = [seconds for r in matrix if r.case.mode == "sigkill"
            for name, seconds in r.gone_after.items() if name.startswith("child")]
    slowest = max(results, key=lambda r: r.seconds)
    worst = lambda values: max(values, default=float("nan"))  # noqa: E731
    return (f"\nfault matrix: {len(matrix)} cases (+{len(results) - len(matrix)} with a protection "
            f"off) in {seconds:.1f} s, the slowest {slowest.case} ({slowest.seconds:.1f} s); latency "
            f"over the timeout: max {worst(reported):+.3f} s to the report, {worst(caught):+.3f} s "
            f"to the caller; children gone after a parent SIGKILL within {worst(gone):.3f} s; "
            f"zombies seen: {sum(len(r.zombies) for r in matrix)}")


@pytest.mark.parametrize("case", MATRIX)
def test_a_fault_is_reported_in_time_and_nothing_outlives_the_parent(case, outcomes):
    outcome = outcomes[case].result()

    found = problems(outcome)

    assert not found, f"{case}:\n" + "\n".join(found)


@pytest.mark.parametrize("case, expected", [_param(case, expected) for case, expected in SABOTAGED])
def test_the_matrix_fails_when_a_protection_is_switched_off(case, expected, outcomes):
    outcome = outcomes[case].result()

    found = problems(outcome)

    assert any(expected in problem for problem in found), f"{case} passed without its protection: {found}"


@pytest.mark.parametrize("case", BLINDED)
def test_without_pdeathsig_a_frozen_peer_keeps_no_sibling_alive_after_a_parent_sigkill(case, outcomes):
    outcome = outcomes[case].result()
    assert "in_place" in outcome.lines, problems(outcome)
    peer_0 = f"child {outcome.lines['in_place']['children'][0]}"  # peer 1, stopped, cannot exit

    remaining = outcome.leftovers

    assert peer_0 not in remaining, f"{case}: {peer_0} outlived the parent; left: {remaining}"


@pytest.mark.parametrize("case", WATCHED)
def test_under_forkserver_without_pdeathsig_a_busy_peer_ends_with_the_parent(case, outcomes):
    outcome = outcomes[case].result()

    found = problems(outcome)

    assert not found, f"{case}:\n" + "\n".join(found)
