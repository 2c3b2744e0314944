"""Command line: ``python -m flcourse run --strategy NAME [options]`` runs a federated simulation.

    python -m flcourse run --strategy fedprox --mu 1 --dataset mnist1d --partition dirichlet:0.1 \\
        --clients 100 --rounds 50 --fraction 0.1 --local-epochs 5 --batch-size 10 --lr 0.1
    python -m flcourse fedavg --dataset digits --partition shards:2 --clients 100 --rounds 50

Every strategy of :mod:`flcourse.federated.strategies` is a ``--strategy`` (``fedavg``,
``fedprox``, ``scaffold``, ``krum``, ``fedbuff``, ...), and each of its constructor parameters an
option (``--mu``, ``--server-lr``, ...; :mod:`flcourse.cli_options`), so a new strategy needs no
change here. ``fedavg`` is ``run --strategy fedavg``.

writes ``history.json`` after every round (atomically: whatever stops the run, every finished
round is in it), a checkpoint ``checkpoint.flc`` and, at the end, ``history.png`` into the output
folder, and prints the final test accuracy. ``--resume`` continues the run saved in the folder
(with the same arguments). Whatever goes wrong is one line on stderr and an exit code: 2 for a
bad argument, an output folder that cannot be written or a checkpoint of another run; 1 for a
run that failed; 130 for Ctrl-C; 143 for SIGTERM.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from pathlib import Path

from .cli_options import add_strategy_options, batch_size, make_strategy, strategy_classes

DATASETS = ("digits", "breast_cancer", "mnist1d")
MODELS = ("softmax", "mlp")
CHECKPOINT = "checkpoint.flc"


class OneLineParser(argparse.ArgumentParser):
    """argparse, but an error is one line on stderr (no usage block) and exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is (exit code 143 instead of 130)."""


def make_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m flcourse", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    fedavg = commands.add_parser("fedavg", help="run FedAvg (FedSGD: --local-epochs 1 --batch-size inf)")
    add_run_options(fedavg)
    fedavg.add_argument("--fraction", dest="fraction_fit", type=float, default=0.1,
                        help="C: fraction of clients per round")
    fedavg.add_argument("--local-epochs", type=int, default=5, help="E")
    fedavg.add_argument("--batch-size", type=batch_size, default=10, help='B, or "inf" for full batches')
    fedavg.add_argument("--lr", type=float, default=0.1)
    run = commands.add_parser("run", help="run any strategy: --strategy NAME and its parameters")
    run.add_argument("--strategy", required=True, choices=sorted(strategy_classes()))
    add_run_options(run)
    add_strategy_options(run)
    return parser


def add_run_options(parser) -> None:
    """The options of every run: data, federation, model, rounds, output."""
    parser.add_argument("--dataset", choices=DATASETS, default="digits")
    parser.add_argument("--partition", default="iid", help="iid, dirichlet:ALPHA, shards:N or quantity:BETA")
    parser.add_argument("--clients", type=int, default=100, help="number of clients K")
    parser.add_argument("--model", choices=MODELS, default="softmax")
    parser.add_argument("--hidden", type=int, default=64, help="hidden units of --model mlp")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--processes", action="store_true", help="run each client as an OS process")
    parser.add_argument("--out", type=Path, default=Path("runs/fedavg"), help="output folder")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run checkpointed in --out (same arguments; --rounds is the total)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def check_output_folder(folder: Path) -> None:
    """Create ``folder`` and write and remove a probe file in it, or raise ValueError saying why."""
    probe = folder / f".flcourse-probe-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except FileExistsError:
        raise ValueError(f"The output folder {folder} cannot be used: it is a file.") from None
    except OSError as error:
        reason = error.strerror or str(error)
        raise ValueError(f"The output folder {folder} cannot be written: {reason}.") from None


class Recorder:
    """The server's callback: rewrites history.json after every round and remembers the round.

    Parameters
    ----------
    folder : Path
        The output folder; the history goes to ``folder / "history.json"``, written through
        :class:`flcourse.federated.history.HistoryWriter` (atomically, each value encoded once).
    """

    def __init__(self, folder: Path):
        from flcourse.federated.history import HistoryWriter

        self.path, self.server, self.last_round = folder / "history.json", None, None
        self.writer = HistoryWriter(self.path)

    def __call__(self, server_round: int, server) -> None:
        self.writer.update(server.history_).write()
        self.last_round = server_round

    @property
    def started(self) -> bool:
        """Whether the server got past its checks (then an error is a failed run)."""
        return hasattr(self.server, "history_")

    def save_finished_rounds(self) -> None:
        """On the way out: also write rounds finished since the last callback (round 0)."""
        history = getattr(self.server, "history_", None) or {}
        rounds = history.get("round", [])
        if rounds and all(len(values) == len(rounds) for values in history.values()):  # no half row
            with contextlib.suppress(OSError):  # a full disk: the file keeps the rounds it holds
                self.writer.update(history).write()
                self.last_round = rounds[-1]

    def holds(self) -> str:
        """Which rounds history.json holds, in words."""
        if self.last_round is None:
            return f"nothing was written to {self.path}"
        return f"{self.path} holds rounds 0..{self.last_round}"


def load_data(args):
    """The dataset ``args`` name."""
    import flcourse as fl

    if args.dataset == "mnist1d":
        from flcourse.data.mnist1d import load_mnist1d

        return load_mnist1d(seed=args.seed)
    return {"digits": fl.load_digits, "breast_cancer": fl.load_breast_cancer}[args.dataset](seed=args.seed)


def make_model(args, data):
    """The model ``args`` name, sized for ``data``."""
    import flcourse as fl

    if args.model == "mlp":
        return fl.MLP(n_features=data.n_features, n_hidden=args.hidden, n_classes=data.n_classes)
    return fl.SoftmaxRegression(n_features=data.n_features, n_classes=data.n_classes)


def run_federated(args, recorder: Recorder) -> dict:
    """Build data, partition, clients, strategy and server from ``args``; run; save; return the history."""
    import flcourse as fl
    from flcourse.federated import ProcessClients, SecAggClient, SecAggFedAvg, Server, make_clients

    data = load_data(args)
    model = make_model(args, data)
    strategy = make_strategy(args)
    partition = fl.make_partition(args.partition, data.y_train, args.clients, seed=args.seed)
    clients = make_clients(model, data.X_train, data.y_train, partition)
    if isinstance(strategy, SecAggFedAvg):  # its clients answer the four stages of secure aggregation
        clients = [SecAggClient(client) for client in clients]
    recorder.server = Server(model, strategy, ProcessClients(clients) if args.processes else clients,
                             test_set=(data.X_test, data.y_test), checkpoint_path=args.out / CHECKPOINT,
                             seed=args.seed)
    recorder.server.run(args.rounds, resume=args.resume, progress=not args.no_progress, callback=recorder)
    recorder.save_finished_rounds()
    title = f"{args.dataset}, {args.partition}, {strategy!r}"
    save_plot(recorder.server.history_, args.out / "history.png", title)
    return recorder.server.history_


def save_plot(history: dict, path: Path, title: str) -> None:
    """Test accuracy and test loss per round, side by side, saved to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from flcourse.plot import plot_history

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    plot_history({"global model": history}, "test_accuracy", ax=left, title="test accuracy")
    plot_history({"global model": history}, "test_loss", ax=right, title="test loss")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While inside, SIGTERM raises :class:`Terminated` (a KeyboardInterrupt); restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def terminate(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def outcome(error: BaseException, recorder: Recorder, args) -> tuple[int, str] | None:
    """The exit code and the one line to print for an error that stopped the run.

    Ctrl-C is 130 and SIGTERM 143; a bad argument (an invalid value, an unusable output folder,
    a checkpoint that does not continue this run) is 2; a run that failed after the server's
    checks (a failed client, divergence, a full disk) is 1. None: an error of another kind, a
    bug whose traceback helps. Every round finished before the error is in history.json.
    """
    from flcourse.federated import CheckpointError, ClientFailure

    recorder.save_finished_rounds()
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if isinstance(error, KeyboardInterrupt):
        what, code = ("terminated (SIGTERM)", 143) if isinstance(error, Terminated) else ("interrupted", 130)
        when = f"after round {recorder.last_round}" if recorder.last_round is not None \
            else "before any round finished"
        return code, f"{what} {when}; {recorder.holds()}"
    if isinstance(error, CheckpointError) and "client set differs" in text:
        text += " (the clients' data follow --dataset, --partition, --clients and --seed: resume with the same)"
    if isinstance(error, CheckpointError) or \
            (isinstance(error, (ValueError, TypeError)) and not recorder.started):
        return 2, f"error: {text}"
    if not isinstance(error, (ClientFailure, ArithmeticError, RuntimeError, ValueError, TypeError, OSError)):
        return None
    failed = 0 if recorder.last_round is None else recorder.last_round + 1
    if recorder.last_round:
        with contextlib.suppress(Exception):  # the plot is a bonus: never hide the error behind it
            save_plot(recorder.server.history_, args.out / "history.png",
                      f"{args.dataset}, {args.partition}: failed in round {failed}")
    return 1, f"error: run failed in round {failed}: {text} ({recorder.holds()})"


def main(argv=None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    Argument errors exit through argparse (code 2, one line). Anything else that stops the run
    is one line on stderr and the code :func:`outcome` gives it.
    """
    parser = make_parser()
    args = parser.parse_args(argv)
    recorder = Recorder(args.out)
    with sigterm_as_interrupt():
        try:
            check_output_folder(args.out)
            history = run_federated(args, recorder)
        except (Exception, KeyboardInterrupt) as error:  # noqa: BLE001 - outcome() sorts them
            result = outcome(error, recorder, args)
            if result is None:
                raise
            print(f"{parser.prog} {args.command}: {result[1]}", file=sys.stderr)
            return result[0]
    print(f"round {history['round'][-1]}: test accuracy {history['test_accuracy'][-1]:.3f}, "
          f"test loss {history['test_loss'][-1]:.4f}; wrote {args.out / 'history.json'} and "
          f"{args.out / 'history.png'}")
    return 0
