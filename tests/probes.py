"""QA probes of flcourse: bad inputs and faults, each classified clear / unclear / silent. Not a pytest module.

    python tests/probes.py                                 # the flcourse first on sys.path (its tree's tests/ for helpers)
    PYTHONPATH=/tmp/flcourse-head python tests/probes.py   # e.g. a worktree of HEAD

clear: ValueError / TypeError (or the package's own errors) naming the argument (client, worker, file) and the bad
value; on the CLI one line on stderr and exit code 2 (bad input), 1 (failed run), 130 / 143 (SIGINT / SIGTERM); or,
for an acceptable input or a handled fault, the right result. unclear: another exception, a traceback, a message
naming neither, a wrong exit code. silent: no error and a wrong result, a hang, a leftover process, a corrupted model.
"""
import json, math, os, re, shutil, signal, subprocess, sys, tempfile, time, warnings
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import numpy as np
import flcourse as fl

ROOT = Path(fl.__file__).resolve().parent.parent   # the tree under test
TESTS = ROOT / "tests"                             # its fault_helpers.py
INF, NAN = float("inf"), float("nan")
FAULT_TIMEOUT = 1.0                                # seconds a worker / client gets in a faulty exchange

# ---------------------------------------------------------------- expectations and classification
def A(name, *more):   # an argument error naming 'name' and the value ("Got ...")
    return ("raise", (ValueError, TypeError), (f"'{name}'", "Got") + more)
def E(exc, *needles):
    return ("raise", exc, needles)
def OK(check=lambda r: True):
    return ("ok", check)
def EITHER(check, name):   # an acceptable input: the right result, or a clear refusal
    return ("either", check, A(name))

def classify(expect, result, error):
    """(kind, note): kind is clear, unclear or silent."""
    text = "" if error is None else f"{type(error).__name__}: {error}".replace("\n", " ")
    if error == "HANG":
        return "silent", "hang"
    if expect[0] == "either":
        expect = OK(expect[1]) if error is None else expect[2]
    if expect[0] == "raise":
        if error is None:
            return "silent", f"no error, returned {show(result)}"
        ok = isinstance(error, expect[1]) and all(n in str(error) for n in expect[2])
        return ("clear" if ok else "unclear"), text
    if error is not None:
        return "unclear", text
    try:
        good, note = bool(expect[1](result)), show(result)
    except Exception as exc:  # noqa: BLE001
        good, note = False, f"{show(result)} (check raised {exc!r})"
    return ("clear", "right result") if good else ("silent", f"wrong result: {note}")


class Hang(BaseException):
    pass

def hang(*_):
    raise Hang()

def call(fn, seconds=20):
    """(result, error) of fn(), an error of "HANG" after ``seconds``."""
    signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        return fn(), None
    except Hang:
        return None, "HANG"
    except BaseException as exc:  # noqa: BLE001 - whatever it is, it is the outcome
        return None, exc
    finally:
        signal.alarm(0)

# ---------------------------------------------------------------- area 1: API
def show(value):   # a short, one-line repr for labels and notes
    if isinstance(value, np.ndarray):
        return f"array({np.round(value, 4).tolist()})" if value.size <= 6 and value.dtype.kind in "biuf" else f"array{value.shape}"
    if isinstance(value, tuple) and any(isinstance(v, np.ndarray) for v in value):
        return "(" + ", ".join(map(show, value)) + ")"
    if hasattr(value, "params_"):   # a fitted server or trainer
        return f"{type(value).__name__} with params up to {np.abs(value.params_).max():.3g}, dropped {getattr(value, 'history_', {}).get('dropped', '-')}"
    text = f"~1e{len(str(abs(value))) - 1}" if isinstance(value, int) and abs(value) >= 10**12 else repr(value).replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."

def sweep(what, make, name, values, expect=None):   # one probe per value of one argument
    return [(f"{what} {name}={show(v)}", (lambda v=v: make(v)), expect or A(name)) for v in values]

def bad(*triples):   # (label, thunk, the argument its error must name)
    return [(label, fn, A(name)) for label, fn, name in triples]

class Stop(Exception):   # what a callback raises to end a run early
    pass

def stop():
    raise Stop()

class Evil:
    """Wraps a client and forges its fit reply, make(params sent, *honest reply), and its evaluate reply."""
    def __init__(self, inner, make, evaluate=None, declare=True):
        self.inner, self.make, self.ev, self.cid = inner, make, evaluate, inner.cid
        if declare:   # the size it holds, as NumpyClient.n_samples says
            self.n_samples = len(inner.y)
    def fit(self, params, config):
        return self.make(params, *self.inner.fit(params, config))
    def evaluate(self, params, config):
        return self.ev(*self.inner.evaluate(params, config)) if self.ev else self.inner.evaluate(params, config)

class Raising(np.ndarray):   # a client's array whose arithmetic raises
    def __array_ufunc__(self, *args, **kwargs):
        raise RuntimeError("arithmetic on a client's array")

class BadLen(tuple):   # a client's reply whose inspection raises
    def __len__(self):
        raise RuntimeError("len of a client's reply")

class BadInt(int):   # a client's n_examples whose comparison raises
    def __le__(self, other):
        raise RuntimeError("comparing a client's n_examples")
    __ge__ = __lt__ = __gt__ = __le__

def mutate_then_fail(params, p, n, m):   # changes the server's own array in place, then fails
    params += 1e5
    raise RuntimeError("after changing the parameters in place")

def api_probes():
    from flcourse.distributed import DataParallelSGD
    from flcourse.federated import FedAvg, NumpyClient, make_clients, sample_clients
    from flcourse.federated.server import ClientFailure, Server
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(20, 3)), rng.integers(0, 2, 20)
    SM, LIN, LOG = fl.SoftmaxRegression(n_features=3, n_classes=2), fl.LinearRegression(n_features=3), fl.LogisticRegression(n_features=3)
    MLP3, P0, YD = fl.MLP(n_features=3, n_hidden=4, n_classes=2), np.zeros(SM.n_params), np.repeat(np.arange(3), 10)
    PM = np.zeros(MLP3.n_params)
    LIN1, XB = fl.LinearRegression(n_features=1), np.array([[1e3], [2e3]])
    X40, Y40 = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
    clients = lambda: make_clients(SM, X40, Y40, [np.arange(k, 40, 4) for k in range(4)])
    CFG = {"server_round": 1, "local_epochs": 1, "batch_size": None, "lr": 0.1, "seed": 0}
    WA, D = fl.weighted_average, object()

    def dp(**kw):
        fit = kw.pop("fit", {})
        return lambda: DataParallelSGD(kw.pop("model", SM), **{"batch_size": 4, **kw}).fit(X, Y, n_steps=fit.pop("n_steps", 3), **fit)

    def srv(model=D, strategy=D, cl=D, run=None, n=1, **kw):
        return lambda: Server(SM if model is D else model, FedAvg() if strategy is D else strategy,
                              clients() if cl is D else cl, seed=kw.pop("seed", 0), **kw).run(n, **(run or {}))

    def dp_until_stop(n_steps):   # a run whose callback stops it after step 2
        try:
            DataParallelSGD(SM, batch_size=4).fit(X, Y, n_steps=n_steps, callback=lambda step, _: step == 2 and stop())
        except Stop:
            return "ran"

    def mal(make, policy="drop", evaluate=None, declare=True, **kw):   # client 1 of 4 forges its replies
        def run():
            cs = clients(); cs[1] = Evil(cs[1], make, evaluate, declare)
            return Server(SM, FedAvg(), cs, on_invalid=policy, seed=0, **kw).run(2)
        return run

    def dropped1(s):   # client 1 dropped in every round, nobody else, and a sane model
        return all([c for c, _ in d] == [1] for d in s.history_["dropped"][1:]) and np.isfinite(s.params_).all() and np.abs(s.params_).max() < 1
    kept = lambda s: s.history_["n_dropped"][1:] == [0, 0] and np.abs(s.params_).max() < 1
    eval_sane = lambda s: math.isfinite(s.history_["client_loss"][-1]) and 0 <= s.history_["client_accuracy"][-1] <= 1 and np.abs(s.params_).max() < 1
    fedavg = lambda name: (lambda v: Server(SM, FedAvg(**{name: v}), clients(), seed=0).run(1))
    server = lambda name: (lambda v: Server(SM, FedAvg(), clients(), **{"seed": 0, name: v}).run(1))
    softmax = lambda name: (lambda v: fl.SoftmaxRegression(**{"n_features": 3, "n_classes": 2, name: v}))
    linear = lambda name: (lambda v: fl.LinearRegression(**{"n_features": 3, name: v}))
    mlp = lambda name: (lambda v: fl.MLP(**{"n_features": 3, "n_hidden": 2, "n_classes": 2, name: v}))
    return [
     # models: constructors, methods, check_gradient
     *sweep("Softmax", softmax("l2"), "l2", [INF, "0.1", True]), *sweep("Softmax", softmax("n_classes"), "n_classes", [1]),
     *sweep("Linear", linear("n_features"), "n_features", [None]), *sweep("Linear", linear("fit_intercept"), "fit_intercept", ["no", 1]),
     *sweep("Logistic", lambda v: fl.LogisticRegression(n_features=v), "n_features", [True, 3.0]),
     *sweep("MLP", mlp("l2"), "l2", [INF]), *sweep("MLP", mlp("n_hidden"), "n_hidden", [1.5]), *sweep("MLP", mlp("n_classes"), "n_classes", [1]),
     ("Softmax l2=Fraction(1,3)", lambda: softmax("l2")(Fraction(1, 3)), OK(lambda m: m.l2 == Fraction(1, 3))),
     ("Linear fit_intercept=np.False_", lambda: linear("fit_intercept")(np.False_), OK(lambda m: m.n_params == 3)),
     *bad(("loss params strings", lambda: SM.loss(["a"] * SM.n_params, X, Y), "params"), ("loss params complex", lambda: SM.loss(P0 + 1j, X, Y), "params"),
          ("loss X empty", lambda: SM.loss(P0, X[:0], Y[:0]), "X"), ("loss X inf", lambda: SM.loss(P0, np.full((2, 3), INF), [0, 1]), "X"),
          ("loss y inf labels", lambda: SM.loss(P0, X[:2], [0, INF]), "y"),
          ("loss y None", lambda: SM.loss(P0, X, None), "y"), ("Linear loss y strings", lambda: LIN.loss(np.zeros(4), X[:2], ["a", "b"]), "y"),
          ("grad params nan", lambda: SM.grad(P0 + NAN, X, Y), "params"), ("Logistic grad label 2", lambda: LOG.grad(np.zeros(4), X[:2], [0, 2]), "y"),
          ("MLP grad params short", lambda: MLP3.grad(PM[:-1], X, Y), "params"), ("predict X 1-D", lambda: SM.predict(P0, X[0]), "X"),
          ("MLP score label 5", lambda: MLP3.score(PM, X[:2], [0, 5]), "y"),
          ("check_gradient model=None", lambda: fl.check_gradient(None, P0, X, Y), "model"),
          ("check_gradient model=class", lambda: fl.check_gradient(fl.SoftmaxRegression, P0, X, Y), "model")),
     *sweep("MLP init_params", lambda v: MLP3.init_params(seed=v), "seed", [-1, True]),
     *sweep("check_gradient", lambda v: fl.check_gradient(SM, P0, X, Y, eps=v), "eps", [INF, 0]),
     ("MLP init_params seed=0 twice", lambda: [MLP3.init_params(seed=0) for _ in range(2)], OK(lambda r: np.array_equal(*r))),
     ("check_gradient MLP", lambda: fl.check_gradient(MLP3, MLP3.init_params(seed=0), X, Y), OK(lambda r: r < 1e-5)),
     # softmax, sigmoid, one_hot, weighted_average
     ("softmax [1000, 0]", lambda: fl.softmax([1000.0, 0.0]), OK(lambda r: np.allclose(r, [1, 0]))),
     ("softmax [inf, 0]", lambda: fl.softmax([INF, 0.0]), EITHER(lambda r: np.allclose(r, [1, 0]), "logits")),
     *sweep("softmax", fl.softmax, "logits", [["a"], np.zeros((2, 0)), 3.0]), *sweep("sigmoid", fl.sigmoid, "z", [["a"], None]),
     *sweep("one_hot", lambda v: fl.one_hot(v, 3), "y", [[0, -1], [0, 3], [0, 1.5]]), *sweep("one_hot", lambda v: fl.one_hot([0], v), "n_classes", [0, True, 10**400]),
     ("one_hot whole floats", lambda: fl.one_hot(np.array([1.0, 0.0]), 2), OK(lambda r: np.array_equal(r, [[0, 1], [1, 0]]))),
     ("wa huge weights", lambda: WA([np.ones(2), 3 * np.ones(2)], [1e308, 1e308]), OK(lambda r: np.allclose(r, 2))),
     ("wa huge+normal weights", lambda: WA([np.ones(2), 3 * np.ones(2)], [1e308, 1.0]), OK(lambda r: np.allclose(r, 1))),
     ("wa generator", lambda: WA((a for a in [np.ones(2), np.zeros(2)]), [1, 1]), OK(lambda r: np.allclose(r, 0.5))),
     *sweep("wa", lambda v: WA([np.ones(2), np.ones(2)], v), "weights", [["a", "b"], [NAN, 1], [-1, 2], [0, 0]]),
     *sweep("wa", lambda v: WA(v, [1, 1]), "arrays", [[["a", "b"], ["c", "d"]], [np.ones(2), np.ones(3)], []]),
     # data
     *sweep("load_digits", lambda v: fl.load_digits(test_size=v), "test_size", [NAN, 1.0, 1e-9, 0.9999]),
     *sweep("load_digits", lambda v: fl.load_digits(seed=v), "seed", [-1]), *sweep("load_breast_cancer", lambda v: fl.load_breast_cancer(seed=v), "seed", [1.5]),
     *sweep("fedprox", lambda v: fl.make_fedprox_synthetic(v, 0, n_clients=3), "alpha", [NAN, 1e308, "1"]),
     *sweep("fedprox", lambda v: fl.make_fedprox_synthetic(0, v, n_clients=3), "beta", [1e308]),
     *[p for name, values in [("iid", ["yes"]), ("n_clients", [0])]
       for p in sweep("fedprox", lambda v, name=name: fl.make_fedprox_synthetic(0, 0, **{"n_clients": 2, name: v}), name, values)],
     # partitions
     *sweep("iid", lambda v: fl.iid_partition(10, v), "n_clients", [0, 11]),
     *sweep("quantity", lambda v: fl.quantity_skew_partition(3, v), "n_clients", [5]), *sweep("quantity", lambda v: fl.quantity_skew_partition(10, 2, beta=v), "beta", [INF]),
     ("quantity beta=1e-300", lambda: fl.quantity_skew_partition(10, 2, beta=1e-300, seed=0), OK(lambda p: sum(map(len, p)) == 10 and min(map(len, p)) >= 1)),
     *sweep("dirichlet", lambda v: fl.dirichlet_partition(YD, 3, alpha=v), "alpha", [INF, NAN]),
     ("dirichlet alpha=1e-300", lambda: fl.dirichlet_partition(YD, 3, alpha=1e-300, min_size=0, seed=0), OK(lambda p: sorted(np.concatenate(p).tolist()) == list(range(30)))),
     *sweep("dirichlet", lambda v: fl.dirichlet_partition(YD, 3, alpha=1.0, max_tries=v), "max_tries", [0]),
     *sweep("dirichlet", lambda v: fl.dirichlet_partition(YD, 3, alpha=1.0, min_size=v), "min_size", [100]),
     *sweep("dirichlet", lambda v: fl.dirichlet_partition(v, 1, alpha=1.0), "y", [None, ["a", "b"], [-1, 0, 1]]),
     *sweep("shards", lambda v: fl.shard_partition(YD, 3, shards_per_client=v), "shards_per_client", [True, 0]),
     *sweep("shards", lambda v: fl.shard_partition(v, 1), "y", [[0, 0.5, 1, 1]]),
     ("shards 100 shards of 30 rows", lambda: fl.shard_partition(YD, 10, shards_per_client=10), A("shards_per_client")),
     ("make_partition dirichlet:0.01", lambda: fl.make_partition("dirichlet:0.01", np.repeat(np.arange(2), 20), 20, seed=0), E(ValueError, "min_size")),
     *[(f"make_partition {s!r}", lambda s=s: fl.make_partition(s, YD, 3), A(name)) for s, name in [
         ("dirichlet:inf", "alpha"), ("quantity:inf", "beta"), ("shards:x", "spec"), ("iid:3", "spec"), (None, "spec")]],
     *bad(("make_partition iid y=None", lambda: fl.make_partition("iid", None, 3), "y"), ("make_partition n_clients=0", lambda: fl.make_partition("iid", YD, 0), "n_clients")),
     *[(f"check_partition {label}", lambda v=v: fl.check_partition(v, 3), A("partition")) for label, v in [
         ("floats", [np.array([0.0, 1.0]), np.array([2.0])]), ("negative", [np.array([0, -1]), np.array([1])]), ("too big", [np.array([0, 1, 2, 3])]),
         ("index 10**30", [[0, 10**30]]), ("bools", [np.array([True, False, True])]), ("empty list", []),
         ("repeated in one part", [np.array([0, 0, 1]), np.array([2])]), ("None", None)]],
     *sweep("check_partition", lambda v: fl.check_partition([np.arange(3)], v), "n_samples", [3.0]),
     ("check_partition lists ok", lambda: fl.check_partition([[0, 2], [1]], 3), OK(lambda r: r is None)),
     *sweep("partition_stats", lambda v: fl.partition_stats([0, 1], [[0], [1]], n_classes=v), "n_classes", [0]),
     *bad(("partition_stats label 3, n_classes=2", lambda: fl.partition_stats([0, 3], [[0, 1]], n_classes=2), "y"),
          ("partition_stats index out of range", lambda: fl.partition_stats([0, 1], [[0, 5]]), "partition"),
          ("partition_stats float part", lambda: fl.partition_stats([0, 1], [np.array([0.0]), np.array([1.0])]), "partition")),
     # optim
     *[p for name, values, make in [("shuffle", ["no"], lambda v: fl.minibatches(5, 2, shuffle=v)), ("batch_size", [INF], lambda v: fl.minibatches(5, v)),
                                    ("n_epochs", [-1], lambda v: fl.minibatches(5, 2, n_epochs=v))]
       for p in sweep("minibatches", lambda v, make=make: list(make(v)), name, values)],
     *[p for name, values in [("lr", [INF, 0]), ("eval_set", [(X,)])]
       for p in sweep("sgd", lambda v, name=name: fl.sgd(SM, P0, X, Y, **{"lr": 0.1, "batch_size": 4, name: v}), name, values)],
     *sweep("sgd", lambda v: fl.sgd(SM, P0, X, Y, lr=0.1, batch_size=4, eval_set=v), "eval_set", [(X[:, :2], Y), (X, Y + 5)],
            E((ValueError, TypeError), "'eval_set", "Got")),
     ("sgd lr=10 diverges", lambda: fl.sgd(LIN1, np.zeros(2), XB, [1.0, 2.0], lr=10.0, batch_size=2, n_epochs=500), E(FloatingPointError, "lr=")),
     *bad(("sgd model=None", lambda: fl.sgd(None, P0, X, Y, lr=0.1, batch_size=4), "model"),
          ("sgd params short", lambda: fl.sgd(SM, P0[:-1], X, Y, lr=0.1, batch_size=4), "params")),
     *[p for name, values in [("lr", [INF]), ("eval_every", [0]), ("n_steps", [-1]), ("eval_set", [{}])]
       for p in sweep("gd", lambda v, name=name: fl.gradient_descent(SM, P0, X, Y, **{"lr": 0.1, "n_steps": 2, name: v}), name, values)],
     ("gd eval_every=10**100", lambda: fl.gradient_descent(SM, P0, X, Y, lr=0.1, n_steps=2, eval_every=10**100), OK(lambda r: r[1]["step"] == [0, 2])),
     # DataParallelSGD: constructor arguments (checked by fit) and fit's
     *[p for name, values in [("timeout", [INF, 0, "1"]), ("lr", [INF]), ("backend", [object(), "gpu"]), ("aggregation", [["server"]]),
                              ("start_method", [3]), ("seed", ["x"]), ("n_workers", [0]), ("model", [None])]
       for p in sweep("DP", lambda v, name=name: dp(**{name: v})(), name, values)],
     ("DP start_method='bogus' (processes)", dp(backend="processes", start_method="bogus"), A("start_method")),
     ("DP dask + ring", dp(backend="dask", aggregation="ring"), A("aggregation")),
     ("DP batch_size < n_workers", dp(n_workers=4, batch_size=2), A("batch_size")),
     ("DP lr=10 diverges", lambda: DataParallelSGD(LIN1, batch_size=2, lr=10.0).fit(XB, [1.0, 2.0], n_steps=500), E(FloatingPointError, "lr=")),
     ("DP MLP no params reproducible", lambda: [DataParallelSGD(MLP3, batch_size=4, seed=0).fit(X, Y, n_steps=3).params_ for _ in range(2)], OK(lambda r: np.array_equal(*r))),
     ("DP fit X None", lambda: DataParallelSGD(SM, batch_size=4).fit(None, Y, n_steps=1), A("X")),
     ("DP n_steps=10**30 (stopped at 2)", lambda: dp_until_stop(10**30), EITHER(lambda r: r == "ran", "n_steps")),
     *[p for name, values in [("n_steps", [-1]), ("eval_every", [0]), ("callback", [3]), ("params", [P0[:-1]])]
       for p in sweep("DP fit", lambda v, name=name: dp(fit={name: v})(), name, values)],
     ("DP callback raises its own error", dp(fit={"callback": lambda s, t: int("x")}), E(ValueError, "invalid literal")),
     ("DP eval_set wrong columns", dp(fit={"eval_set": (X[:, :2], Y)}), E((ValueError, TypeError), "'eval_set", "Got")),
     *[(f"DP partition {label}", dp(fit={"partition": v}), A("partition")) for label, v in [
         ("floats", [np.arange(10.0), np.arange(10.0, 20.0)]), ("misses rows", [np.arange(5), np.arange(5, 10)]), ("empty part", [np.arange(20), np.array([], int)]),
         ("3 parts for 2", np.array_split(np.arange(20), 3))]],
     # federated: strategies (checked when a server runs them), clients, sampling
     *[p for name, values in [("fraction_fit", [0, 1.5, NAN]), ("local_epochs", [0]), ("batch_size", [0]), ("lr", [INF, None])]
       for p in sweep("FedAvg", fedavg(name), name, values)],
     ("FedAvg fraction_fit=1e-9", lambda: fedavg("fraction_fit")(1e-9), OK(lambda s: s.history_["n_selected"] == [0, 1])),
     *bad(("NumpyClient model=None", lambda: NumpyClient(None, X, Y), "model"),
          ("NumpyClient X empty", lambda: NumpyClient(SM, X[:0], Y[:0]), "X"), ("NumpyClient y label 5", lambda: NumpyClient(SM, X, Y * 5), "y"),
          ("NumpyClient.fit params short", lambda: NumpyClient(SM, X, Y).fit(P0[:-1], CFG), "params"),
          ("NumpyClient.fit config {}", lambda: NumpyClient(SM, X, Y).fit(P0, {}), "config"),
          ("NumpyClient.evaluate params short", lambda: NumpyClient(SM, X, Y).evaluate(P0[:-1], {}), "params"),
          ("make_clients model=None", lambda: make_clients(None, X, Y, [np.arange(20)]), "model")),
     *sweep("NumpyClient", lambda v: NumpyClient(SM, X, Y, cid=v), "cid", [-1, 1.5]),
     *sweep("make_clients", lambda v: make_clients(SM, X, Y, v), "partition", [[np.arange(10.0)], [np.arange(10), np.arange(5, 15)],
                                                                               [np.arange(10), np.array([], int)]]),
     *sweep("sample_clients", lambda v: sample_clients(v, 0.5, rng), "n_clients", [0]),
     *sweep("sample_clients", lambda v: sample_clients(10, v, rng), "fraction", [-1.0, 2.0, NAN]),
     *sweep("sample_clients", lambda v: sample_clients(10, 0.5, v), "rng", [None, 0], EITHER(lambda r: len(set(r.tolist())) == 5, "rng")),
     # Server: constructor arguments (checked when it runs) and run's
     *sweep("Server", lambda v: srv(model=v)(), "model", [None, fl.SoftmaxRegression]), *sweep("Server", lambda v: srv(strategy=v)(), "strategy", [None, object()]),
     *sweep("Server", lambda v: srv(cl=v)(), "clients", [[], None, 3, ["a", "b"], [object()]]),
     ("Server clients generator", lambda: Server(SM, FedAvg(), (c for c in clients()), seed=0).run(1), OK(lambda s: s.history_["n_selected"] == [0, 4])),
     ("Server duplicate client ids", lambda: Server(SM, FedAvg(), [c for c in clients()[:2] for _ in range(2)]).run(1), A("clients")),
     *sweep("Server", server("test_set"), "test_set", [X, (X,)]),
     *sweep("Server", server("test_set"), "test_set", [(X[:, :2], Y), (X, Y * 5)], E((ValueError, TypeError), "'test_set", "Got")),
     *[p for name, values in [("evaluate_clients", ["yes"]), ("on_invalid", ["ignore"]), ("round_timeout", [INF, 0, NAN]),
                              ("max_examples", [0]), ("param_bound", [NAN]), ("checkpoint_path", [3]), ("seed", ["x"])]
       for p in sweep("Server", server(name), name, values)],
     *sweep("Server.run", lambda v: srv(n=v)(), "n_rounds", [-1, 1.5]), ("Server.run n_rounds=0", srv(n=0), OK(lambda s: s.history_["round"] == [0])),
     *[p for name, values in [("params", [P0[:-1], P0 + NAN]), ("resume", ["yes"]), ("progress", [1]), ("callback", [3])]
       for p in sweep("Server.run", lambda v, name=name: srv(run={name: v})(), name, values)],
     ("Server.run resume, no checkpoint_path", srv(run={"resume": True}), A("checkpoint_path")),
     # a malicious client 1 (of 4), under on_invalid="drop" unless said otherwise
     *[(f"evil {label}", mal(make), OK(dropped1)) for label, make in [
         ("n_examples=10**300", lambda p, q, n, m: (q, 10**300, m)), ("n_examples=2**1100", lambda p, q, n, m: (q, 2**1100, m)),
         ("n_examples=1e300 (float)", lambda p, q, n, m: (q, 1e300, m)), ("n_examples one more than held", lambda p, q, n, m: (q, n + 1, m)),
         ("n_examples=0", lambda p, q, n, m: (q, 0, m)), ("params 1.7e308", lambda p, q, n, m: (np.full_like(q, 1.7e308), n, m)),
         ("params ndarray subclass raising", lambda p, q, n, m: (q.view(Raising), n, m)), ("params one short", lambda p, q, n, m: (q[:-1], n, m)),
         ("params NaN", lambda p, q, n, m: (q * NAN, n, m)), ("params list", lambda p, q, n, m: (q.tolist(), n, m)),
         ("params longdouble 1e4000", lambda p, q, n, m: (np.full(q.shape, np.longdouble("1e4000")), n, m)),
         ("reply None", lambda p, q, n, m: None), ("reply whose len() raises", lambda p, q, n, m: BadLen((q, n, m))),
         ("n_examples whose comparison raises", lambda p, q, n, m: (q, BadInt(n), m)), ("metrics None", lambda p, q, n, m: (q, n, None)),
         ("fit raises", lambda p, q, n, m: 1 / 0), ("changes the server's params in place, then fails", mutate_then_fail)]],
     ("evil undeclared size, 101 > max_examples=100", mal(lambda p, q, n, m: (q, 101, m), declare=False, max_examples=100), OK(dropped1)),
     ("client float32 params, np.int64 n (fine)", mal(lambda p, q, n, m: (q.astype(np.float32), np.int64(n), m)), OK(kept)),
     ("evil n_examples=10**300 under fail", mal(lambda p, q, n, m: (q, 10**300, m), policy="fail"), E(ClientFailure, "client 1")),
     ("evil params NaN under fail", mal(lambda p, q, n, m: (q * NAN, n, m), policy="fail"), E(ClientFailure, "client 1")),
     *[(f"evil evaluate {label}", mal(lambda p, q, n, m: (q, n, m), evaluate=ev, evaluate_clients=True), OK(eval_sane)) for label, ev in [
         ("loss NaN", lambda l, n, m: (NAN, n, m)), ("n=10**300", lambda l, n, m: (l, 10**300, m)),
         ("accuracy 7", lambda l, n, m: (l, n, {"accuracy": 7.0})), ("raises", lambda l, n, m: 1 / 0)]],
     *privacy_probes(SM, X, Y, P0, clients, srv),
    ]


def privacy_probes(SM, X, Y, P0, clients, srv):   # chapter 08: the accountant, leakage, DP, secure aggregation
    from flcourse import privacy
    from flcourse.federated import DPFedAvg, SecAggClient, SecAggFedAvg
    from flcourse.privacy.secagg_protocol import SecureAggregationAborted
    secure = lambda: [SecAggClient(c) for c in clients()]
    grad = SM.loss_grad(P0, X[:1], Y[:1])[1]
    return [
     *bad(("epsilon q=1.5", lambda: privacy.epsilon(1.0, 1.5, 10, 1e-5), "q"),
          ("epsilon delta=0", lambda: privacy.epsilon(1.0, 0.1, 10, 0.0), "delta"),
          ("epsilon steps=2.5", lambda: privacy.epsilon(1.0, 0.1, 2.5, 1e-5), "steps"),
          ("noise for epsilon -1", lambda: privacy.noise_multiplier_for_epsilon(-1.0, 0.1, 10, 1e-5), "target_epsilon"),
          ("recover input, grad short", lambda: privacy.recover_input_from_gradient(SM, grad[:-1]), "grad"),
          ("DLG n_samples=0", lambda: privacy.reconstruct_from_gradient(SM, P0, grad, 0), "n_samples"),
          ("DLG grad NaN", lambda: privacy.reconstruct_from_gradient(SM, P0, grad * NAN, 1), "grad"),
          ("split_secret threshold 0", lambda: privacy.split_secret(5, 3, 0), "threshold"),
          ("clip_and_encode bits=1", lambda: privacy.clip_and_encode([0.5], 1.0, 1), "bits"),
          ("expand_mask seed short", lambda: privacy.expand_mask(b"short", 4), "seed"),
          ("LocalDPClient clip_norm=0", lambda: privacy.LocalDPClient(clients()[0], clip_norm=0.0, noise_multiplier=1.0),
           "clip_norm"),
          ("SecAggClient(None)", lambda: SecAggClient(None), "client"),
          ("DPFedAvg sampling_rate=0", srv(strategy=DPFedAvg(sampling_rate=0.0)), "sampling_rate"),
          ("SecAggFedAvg threshold=0", srv(strategy=SecAggFedAvg(threshold=0.0), cl=secure()), "threshold"),
          ("SecAggFedAvg noise without clip_norm", srv(strategy=SecAggFedAvg(noise_multiplier=1.0), cl=secure()),
           "noise_multiplier")),
     ("SecAggFedAvg over plain clients, under drop", srv(strategy=SecAggFedAvg(), on_invalid="drop"),
      E(SecureAggregationAborted, "advertise-keys", "threshold")),
     ("SecAggFedAvg, 4 secure clients", srv(strategy=SecAggFedAvg(lr=0.1), cl=secure(), n=2),
      OK(lambda s: [m["n_masked"] for m in s.history_["strategy_metrics"][1:]] == [4, 4])),
    ]


def run_api():
    warnings.simplefilter("ignore")
    return [(label, *classify(expect, *call(fn))) for label, fn, expect in api_probes()]

# ---------------------------------------------------------------- area 2: CLI
def env():   # children import flcourse from the tree under test
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))

def cli(args, cwd, timeout=120):
    run = subprocess.run([sys.executable, "-m", "flcourse", *args], cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)
    return run.returncode, run.stdout, [line for line in run.stderr.splitlines() if line.strip()]

def rounds_of(out):
    try:
        return json.loads((Path(out) / "history.json").read_text())["round"]
    except (OSError, ValueError, KeyError, TypeError):
        return None

TINY = ["fedavg", "--clients", "4", "--rounds", "2", "--no-progress"]

def cli_probes(base):
    """(label, extra args, expected exit code, words its one stderr line must hold or check(out) for exit 0, prepare(out))."""
    copy = lambda out: shutil.copytree(base / "run2", out)
    like4 = lambda out: json.loads((out / "history.json").read_text())["test_accuracy"] == json.loads((base / "run4" / "history.json").read_text())["test_accuracy"]
    three = lambda out: rounds_of(out) == [0, 1, 2]
    bad = [("--clients", "0", "clients"), ("--clients", "100000", "clients"), ("--clients", "x", "clients"), ("--rounds", "-1", "rounds"),
           ("--rounds", "1.5", "rounds"), ("--fraction", "0", "fraction"), ("--fraction", "1.5", "fraction"), ("--fraction", "nan", "fraction"),
           ("--lr", "-1", "lr"), ("--lr", "inf", "lr"), ("--lr", "nan", "lr"), ("--local-epochs", "0", "epochs"), ("--batch-size", "0", "batch"),
           ("--batch-size", "x", "batch"), ("--seed", "-1", "seed"), ("--dataset", "foo", "dataset"), ("--partition", "foo", "partition"),
           ("--partition", "dirichlet:x", "dirichlet"), ("--partition", "dirichlet:0", "alpha"), ("--partition", "dirichlet:inf", "alpha"),
           ("--partition", "dirichlet:nan", "alpha"), ("--partition", "shards:0", "shards"), ("--partition", "shards:100000", "shards"),
           ("--partition", "quantity:0", "beta"), ("--partition", "", "partition"), ("--partition", "iid:3", "iid:3")]
    return [(f"{o} {v!r}", [o, v], 2, (w, v.split(":")[-1]), None) for o, v, w in bad] + [
        ("unknown option --bogus", ["--bogus"], 2, ("--bogus",), None),
        ("--lr 1e308 (diverges)", ["--lr", "1e308"], 1, ("round 1", "client"), None),
        ("--out under a regular file", [], 2, ("run", "Not a directory"), lambda out: out.parent.write_text("x")),
        ("--out at a regular file", [], 2, ("run", "file"), lambda out: out.parent.mkdir(parents=True) or out.write_text("x")),
        ("--out name of 300 bytes", ["--out", "x" * 300], 2, ("x" * 300, "too long"), None),
        ("--resume, no checkpoint", ["--resume"], 2, ("checkpoint",), None),
        ("--resume --lr 0.2", ["--resume", "--lr", "0.2"], 2, ("'lr'", "0.2"), copy),
        ("--resume --clients 5", ["--resume", "--clients", "5"], 2, ("client", "5"), copy),
        ("--resume --local-epochs 1", ["--resume", "--local-epochs", "1"], 2, ("local_epochs", "1"), copy),
        ("--resume --dataset breast_cancer", ["--resume", "--dataset", "breast_cancer"], 2, ("checkpoint",), copy),
        ("--resume --seed 1 (other data split)", ["--resume", "--seed", "1"], 2, ("seed",), copy),
        ("--resume --rounds 1 (< saved 2)", ["--resume", "--rounds", "1"], 2, ("rounds", "1"), copy),
        ("a tiny run", [], 0, three, None), ("--rounds 0", ["--rounds", "0"], 0, lambda out: rounds_of(out) == [0], None),
        ("--batch-size inf", ["--batch-size", "inf"], 0, three, None), ("--fraction 1e-9 (one client)", ["--fraction", "1e-9"], 0, three, None),
        ("--partition dirichlet:0.001", ["--partition", "dirichlet:0.001"], 0, three, None), ("--processes", ["--processes"], 0, three, None),
        ("--resume --rounds 4 = a run of 4", ["--resume", "--rounds", "4"], 0, like4, copy),
        ("--resume --processes --rounds 4 = a run of 4", ["--resume", "--processes", "--rounds", "4"], 0, like4, copy)]

def run_cli_probe(probe, tmp, index):
    label, extra, code, expect, prepare = probe
    out = Path(tmp) / f"p{index}" / "run"
    if prepare:
        prepare(out)
    try:
        rc, stdout, lines = cli(TINY + (extra if "--out" in extra else ["--out", str(out)] + extra), tmp)
    except subprocess.TimeoutExpired:
        return label, "silent", "hang (120 s)"
    note = f"exit {rc}: " + (" / ".join(lines)[:220] if lines else "(no stderr)")
    if code == 0:   # an acceptable input: exit 0, nothing on stderr, the right history
        if rc != 0 or lines:
            return label, "unclear", note
        return (label, "clear", "right result") if expect(out) else (label, "silent", "exit 0, wrong history")
    if rc == 0:
        return label, "silent", "exit 0: " + stdout.strip()[:150]
    clear = rc == code and len(lines) == 1 and all(word.lower() in lines[0].lower() for word in expect)
    return label, ("clear" if clear else "unclear"), note

def run_signal_probes(tmp):
    """Ctrl-C, SIGTERM and SIGKILL in the middle of a long run (after 4 rounds); then --resume after SIGKILL."""
    rows = []
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGKILL, -9)):
        out = Path(tmp) / f"sig-{sig.name}"
        args = ["fedavg", "--clients", "4", "--rounds", "1000000", "--no-progress", "--out", str(out)]
        run = subprocess.Popen([sys.executable, "-m", "flcourse", *args], cwd=tmp, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        started = time.monotonic()
        while time.monotonic() - started < 8 and len(rounds_of(out) or []) < 4:
            time.sleep(0.05)
        time.sleep(0.3)
        run.send_signal(sig)
        try:
            lines = [line for line in run.communicate(timeout=20)[1].splitlines() if line.strip()]
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL); run.communicate()
            rows.append((f"{sig.name} mid-run", "silent", "hang after the signal")); continue
        rounds = rounds_of(out)
        good = bool(rounds) and len(rounds) >= 2 and rounds == list(range(len(rounds)))
        said = re.search(r"after round (\d+)", " ".join(lines))   # the line names the last round in history.json
        good = good and (sig == signal.SIGKILL or (said is not None and int(said.group(1)) == rounds[-1]))
        wrong = run.returncode != code or (sig != signal.SIGKILL and len(lines) != 1)
        rows.append((f"{sig.name} mid-run: exit code, history.json", "unclear" if wrong else "clear" if good else "silent",
                     f"exit {run.returncode}, history rounds 0..{rounds[-1] if rounds else None}: {' / '.join(lines)[:150]}"))
    total = (rounds[-1] if rounds else 0) + 3
    rc, _, lines = cli(args[:3] + ["--rounds", str(total), "--no-progress", "--out", str(out), "--resume"], tmp)
    done = rounds_of(out)
    rows.append(("SIGKILL mid-run, then --resume", "clear" if rc == 0 and done == list(range(total + 1)) else "unclear" if rc else "silent",
                 f"exit {rc}, rounds {done and (done[0], done[-1], len(done))}: {' / '.join(lines)[:150]}"))
    return rows

def run_cli():
    with tempfile.TemporaryDirectory(prefix="flcourse-probes-cli-") as tmp:
        base = Path(tmp) / "base"
        cli(TINY + ["--out", str(base / "run2")], tmp)
        cli(TINY[:3] + ["--rounds", "4", "--no-progress", "--out", str(base / "run4")], tmp)
        with ThreadPoolExecutor(2) as pool:
            rows = list(pool.map(lambda ip: run_cli_probe(ip[1], tmp, ip[0]), enumerate(cli_probes(base))))
        return rows + run_signal_probes(tmp)

# ---------------------------------------------------------------- area 3: checkpoints
F = "file"   # the expectation: a ValueError (CheckpointError) naming the file, or exactly the uninterrupted run

def checkpoint_probes():
    """(label, damage(state path, history path) or None, changes to the resuming server, n_rounds, what the error must name)."""
    from flcourse.federated import FedAvg, FedSGD, make_clients
    from flcourse.federated.server import Server
    rng = np.random.default_rng(1)
    X, Y, SM = rng.normal(size=(48, 3)), rng.integers(0, 2, 48), fl.SoftmaxRegression(n_features=3, n_classes=2)
    clients = lambda seed=0: make_clients(SM, X, Y, fl.iid_partition(48, 4, seed=seed))
    fedavg = lambda cls=FedAvg, **kw: cls(**{"fraction_fit": 0.5, "local_epochs": 1, "batch_size": 4, "lr": 0.1, **kw})
    server = lambda p, model=SM, strat=None, cl=None: Server(model, strat or fedavg(), clients() if cl is None else cl,
                                                          test_set=(X, Y), checkpoint_path=p, seed=0)
    ref = {n: Server(SM, fedavg(), clients(), test_set=(X, Y), seed=0).run(n) for n in (3, 4)}
    exact = lambda n: lambda s: np.array_equal(s.params_, ref[n].params_) and s.history_["round"] == list(range(n + 1)) \
        and s.history_["test_accuracy"] == ref[n].history_["test_accuracy"]

    def slots(data):   # offsets of the state's two copies, newest first (in another format: two offsets inside)
        found = [(int.from_bytes(data[m.start() + 4:m.start() + 12], "little"), m.start()) for m in re.finditer(b"SLOT", data)]
        return [offset for _, offset in sorted(found, reverse=True)] or [len(data) // 2, len(data) // 5]
    edit = lambda fn: lambda p, h: p.write_bytes(fn(p.read_bytes()))                   # damage the state file
    hedit = lambda fn: lambda p, h: h.exists() and h.write_bytes(fn(h.read_bytes()))   # the history beside it, if any
    flip = lambda *at: lambda d: bytes(b ^ 0xFF if k in {w(d) if callable(w) else w % len(d) for w in at} else b for k, b in enumerate(d))
    row = lambda i, fn: lambda d: b"\n".join(fn(line) if k == i else line for k, line in enumerate(d.split(b"\n")))
    digit = row(2, lambda line: re.sub(rb'("test_accuracy": 0\.)(\d)', lambda m: m.group(1) + bytes([48 + (int(m.group(2)) + 1) % 10]), line))
    newest = lambda k: lambda d: slots(d)[0] + k
    damaged = [
        ("state empty", edit(lambda d: b"")), ("state cut to 10 bytes", edit(lambda d: d[:10])), ("state cut to 63 bytes", edit(lambda d: d[:63])),
        ("state cut to 100 bytes", edit(lambda d: d[:100])), ("state cut in half", edit(lambda d: d[:len(d) // 2])),
        ("state last byte cut", edit(lambda d: d[:-1])), ("state cut inside the newest copy", edit(lambda d: d[:newest(100)(d)])),
        ("byte 0 flipped", edit(flip(0))), ("byte 30 (2nd line) flipped", edit(flip(30))), ("newest copy: tag flipped", edit(flip(newest(1)))),
        ("newest copy: checksum flipped", edit(flip(newest(30)))), ("newest copy: header flipped", edit(flip(newest(80)))),
        ("newest copy: body flipped", edit(flip(newest(300)))), ("older copy flipped", edit(flip(lambda d: slots(d)[1] + 300))),
        ("both copies flipped", edit(flip(newest(300), lambda d: slots(d)[1] + 300))), ("last byte (padding) flipped", edit(flip(-1))),
        ("random garbage, same size", edit(lambda d: np.random.default_rng(0).bytes(len(d)))),
        ("JSON instead", edit(lambda d: b'{"round": 3, "params": [0, 0, 0, 0, 0, 0, 0, 0]}')),
        ("format 2 in the magic line", edit(lambda d: d.replace(b"CHECKPOINT 1", b"CHECKPOINT 2", 1))),
        ("a numpy savez file", lambda p, h: np.savez(open(p, "wb"), params=np.zeros(SM.n_params))),
        ("a directory instead", lambda p, h: (p.unlink(), p.mkdir())), ("history file missing", lambda p, h: h.unlink(missing_ok=True)),
        ("history cut to 2 rows", hedit(lambda d: b"\n".join(d.split(b"\n")[:2]) + b"\n")),
        ("history row 2 garbage", hedit(row(2, lambda line: b"@@@" + line))),
        ("history row after the saved round (a crash)", hedit(lambda d: d + d.split(b"\n")[3].replace(b'"round": 3', b'"round": 4') + b"\n")),
        ("history: a digit of round 2 changed", hedit(digit))]

    class MyFedAvg(FedAvg):
        pass
    return [(label, damage, {}, 4, F) for label, damage in damaged] + [
        ("resume with l2=0.1", None, {"model": fl.SoftmaxRegression(n_features=3, n_classes=2, l2=0.1)}, 4, "'l2'"),
        ("resume with an MLP", None, {"model": fl.MLP(n_features=3, n_hidden=2, n_classes=2)}, 4, "MLP"),
        ("resume with lr=0.2", None, {"strat": fedavg(lr=0.2)}, 4, "'lr'"),
        ("resume with fraction_fit=1", None, {"strat": fedavg(fraction_fit=1.0)}, 4, "'fraction_fit'"),
        ("resume with FedSGD", None, {"strat": FedSGD(fraction_fit=0.5, lr=0.1)}, 4, "FedSGD"),
        ("resume with a FedAvg subclass", None, {"strat": fedavg(MyFedAvg)}, 4, "MyFedAvg"),
        ("resume with 3 of the 4 clients", None, {"cl": clients()[:3]}, 4, "client"),
        ("resume with other clients of the same sizes", None, {"cl": clients(seed=7)}, 4, "client"),
        ("resume with the clients in another order", None, {"cl": clients()[::-1]}, 4, F),
        ("resume with n_rounds=2 (< saved 3)", None, {}, 2, "'n_rounds'"), ("resume with n_rounds=3 (= saved)", None, {}, 3, F),
        ("resume from a path never written", lambda p, h: (p.unlink(), h.unlink(missing_ok=True)), {}, 4, F),
        ("write the checkpoint to a directory", lambda p, h: p.mkdir(), {"write": "ckpt"}, 1, "ckpt"),
        ("write the checkpoint under a regular file", lambda p, h: p.parent.joinpath("ckfile").write_text("x"), {"write": "ckfile/ckpt"}, 1, "ckpt"),
        ("resume=True, checkpoint_path=None", None, {"path": None}, 4, "'checkpoint_path'")], server, exact

def run_checkpoints():
    probes, server, exact = checkpoint_probes()
    rows = []
    for label, damage, changes, n, needle in probes:
        with tempfile.TemporaryDirectory(prefix="flcourse-probes-c-") as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = Path(tmp) / "ckpt"
            if "write" in changes:   # a new run saving to a path that cannot hold a checkpoint
                damage(p, None)
                rows.append((label, *classify(E((ValueError, TypeError), needle), *call(lambda: server(Path(tmp) / changes["write"]).run(n)))))
                continue
            server(p).run(3)
            if damage:
                damage(p, Path(f"{p}.history.jsonl"))
            kw = {k: v for k, v in changes.items() if k != "path"}
            expect = ("either", exact(n), E(ValueError, "ckpt")) if needle == F else \
                A(needle.strip("'")) if needle in ("'n_rounds'", "'checkpoint_path'") else E(ValueError, "ckpt", needle)
            rows.append((label, *classify(expect, *call(lambda: server(changes.get("path", p), **kw).run(n, resume=True)))))
    return rows

# ---------------------------------------------------------------- area 4: faults (each in a child process)
FAULTS = [(kind, fault, method) for kind in ("worker", "client") for fault in ("raise", "exit", "hang", "sigkill", "sigstop")
          for method in ("fork", "spawn")]

def alive(pid):   # a zombie has exited: it counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

def fault_child(kind, fault, method):
    """One fault case, in this (child) process: print one JSON line with what happened."""
    sys.path.insert(0, str(TESTS))
    from fault_helpers import SENTINEL, FaultyClient, FaultyModel   # the tree under test's helpers
    from flcourse.distributed import DataParallelSGD, ProcessBackend, WorkerError
    from flcourse.federated import FedAvg, make_clients
    from flcourse.federated.server import ClientFailure, ProcessClients, Server
    marks, pids, signals = {}, [], {"sigkill": signal.SIGKILL, "sigstop": signal.SIGSTOP}
    for error in (WorkerError, ClientFailure):   # when the parent first reports the failure
        def timed(self, *args, _init=error.__init__):
            "start" in marks and marks.setdefault("report", time.monotonic())
            _init(self, *args)
        error.__init__ = timed
    def watch(method_owner, name, is_faulty, processes):   # start the clock (and send the signal) at the faulty exchange
        original = getattr(method_owner, name)
        def watched(*args):
            if is_faulty(*args):
                pids[:] = [p.pid for p in processes()]
                marks["start"] = time.monotonic()
                fault in signals and os.kill(pids[1], signals[fault])
            return original(*args)
        setattr(method_owner, name, watched)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 4)), rng.integers(0, 3, 200)
    try:
        if kind == "worker":   # worker 1 holds rows 100..199, which carry the sentinel: FaultyModel fails in step 1
            X[100:, -1] = SENTINEL
            model = fl.SoftmaxRegression(n_features=4, n_classes=3) if fault in signals else FaultyModel(n_features=4, n_classes=3, fault=fault)
            backend, calls = ProcessBackend(start_method=method, timeout=FAULT_TIMEOUT), []
            watch(backend, "reduce_gradients", lambda *a: calls.append(1) or len(calls) == (2 if fault in signals else 1), lambda: backend.processes)
            DataParallelSGD(model, n_workers=2, batch_size=200, backend=backend, seed=0).fit(X, y, n_steps=4)
        else:   # client 1 fails in round 2
            model = fl.SoftmaxRegression(n_features=4, n_classes=3)
            clients = make_clients(model, X, y, fl.iid_partition(200, 4, seed=0))
            if fault not in signals:
                clients[1] = FaultyClient(clients[1], fault, from_round=2)
            runner = ProcessClients(clients, start_method=method)
            def round_two_fit(method, requests, timeout):   # the round grid sends each stage through runner.send
                return method == "fit" and any(args[1].get("server_round") == 2 for args in requests.values())
            watch(runner, "send", round_two_fit, lambda: runner.processes)
            Server(model, FedAvg(), runner, round_timeout=FAULT_TIMEOUT, on_invalid="fail", seed=0).run(3)
        outcome = {"error": None, "message": "finished"}
    except BaseException as exc:  # noqa: BLE001
        outcome = {"error": type(exc).__name__, "message": str(exc)}
    end = time.monotonic()
    while time.monotonic() - end < 2 and any(alive(pid) for pid in pids):
        time.sleep(0.05)
    start = marks.get("start", end)
    print(json.dumps(dict(outcome, pids=pids, left=[pid for pid in pids if alive(pid)],
                          report=marks.get("report", end) - start, returned=end - start)), flush=True)

def run_fault_probe(kind, fault, method):
    label = f"{kind} {fault} ({method})"
    child = subprocess.Popen([sys.executable, __file__, "--fault", kind, fault, method], env=env(), cwd=tempfile.gettempdir(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = child.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL); child.communicate()
        return label, "silent", "hang: no outcome within 30 s"
    try:
        result = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return label, "unclear", f"exit {child.returncode}, no outcome: {stderr.strip()[-200:]}"
    orphans = [pid for pid in result["pids"] if alive(pid)]
    for pid in orphans:   # our grandchildren: never leave them behind
        os.kill(pid, signal.SIGKILL)
    message = " ".join(result["message"].split())
    note = f"{result['error']} after {result['report']:.2f} s (returned {result['returned']:.2f} s): {message[:150]}"
    if result["left"] or orphans:
        return label, "silent", f"leftover processes {result['left'] or orphans}; " + note
    if result["error"] is None:
        return label, "silent", "finished without an error"
    clear = result["error"] == ("WorkerError" if kind == "worker" else "ClientFailure") and f"{kind} 1" in message \
        and f"{kind} 0" not in message and result["report"] <= FAULT_TIMEOUT + 1
    return label, "clear" if clear else "unclear", note

def run_faults():
    return [run_fault_probe(*case) for case in FAULTS]

# ---------------------------------------------------------------- the report
def main():
    print(f"flcourse from {fl.__file__} (python {sys.version.split()[0]}, numpy {np.__version__})")
    results, started = {}, time.monotonic()
    for area, runner in (("API", run_api), ("CLI", run_cli), ("Checkpoints", run_checkpoints), ("Faults", run_faults)):
        t0 = time.monotonic()
        results[area] = runner()
        print(f"  {area}: {len(results[area])} probes in {time.monotonic() - t0:.1f} s", flush=True)
    print(f"\n{'area':<12} | tried | clear | unclear | silent")
    for area, rows in [*results.items(), ("total", [row for rows in results.values() for row in rows])]:
        counts = [len(rows)] + [sum(kind == k for _, kind, _ in rows) for k in ("clear", "unclear", "silent")]
        print(f"{area:<12} | {counts[0]:5} | {counts[1]:5} | {counts[2]:7} | {counts[3]:6}")
    print(f"({time.monotonic() - started:.0f} s)\n\nunclear and silent probes:")
    for area, rows in results.items():
        for label, kind, note in rows:
            if kind != "clear":
                print(f"  [{area}] {kind:7} | {label} | {note[:260]}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--fault"]:
        fault_child(*sys.argv[2:5])
    else:
        main()
