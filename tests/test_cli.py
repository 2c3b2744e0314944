"""python -m flcourse fedavg: writes a history and a plot; a bad argument is one line and exit 2;
whatever stops a run (a failure, Ctrl-C, SIGTERM, SIGKILL), every finished round is kept."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import flcourse as fl
from flcourse.__main__ import Recorder, main


def test_fedavg_writes_history_and_plot(tmp_path, capsys):
    code = main(["fedavg", "--partition", "shards:2", "--clients", "20", "--rounds", "3",
                 "--fraction", "0.5", "--out", str(tmp_path), "--no-progress"])

    history = json.loads((tmp_path / "history.json").read_text())
    assert code == 0
    assert history["round"] == [0, 1, 2, 3] and history["n_selected"][1:] == [10, 10, 10]
    assert (tmp_path / "history.png").stat().st_size > 10_000
    assert capsys.readouterr().out.startswith("round 3: test accuracy ")


def test_fedsgd_is_fedavg_with_one_epoch_of_full_batches(tmp_path):
    assert main(["fedavg", "--local-epochs", "1", "--batch-size", "inf", "--clients", "5",
                 "--rounds", "2", "--out", str(tmp_path), "--no-progress"]) == 0


@pytest.mark.parametrize("arguments, message", [
    (["--fraction", "0"], "'fraction_fit' parameter of FedAvg must be a float in (0, 1]. Got 0.0"),
    (["--fraction", "1.5"], "'fraction_fit' parameter of FedAvg must be a float in (0, 1]. Got 1.5"),
    (["--local-epochs", "0"], "'local_epochs' parameter of FedAvg must be an int in [1, inf). Got 0"),
    (["--batch-size", "0"], "'batch_size' parameter of FedAvg must be an int in [1, inf). Got 0"),
    (["--clients", "5000"], "'n_clients' parameter of iid_partition must be an int in [1, 1347]. Got 5000"),
    (["--partition", "banana:3"], "'spec' parameter of make_partition must be one of"),
    (["--partition", "shards:x"], "bad number after 'shards:'"),
    (["--rounds", "x"], "argument --rounds: invalid int value: 'x'"),
    (["--dataset", "mnist"], "argument --dataset: invalid choice: 'mnist'"),
    (["--lr", "-1"], "'lr' parameter of FedAvg must be a float in (0, inf). Got -1.0"),
])
def test_bad_arguments_print_one_line_and_exit_2(arguments, message, tmp_path, capsys):
    try:
        code = main(["fedavg", "--rounds", "1", *arguments, "--no-progress", "--out", str(tmp_path)])
    except SystemExit as exit:  # argparse's own errors
        code = exit.code

    stderr = capsys.readouterr().err
    assert code == 2
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert message in stderr


def test_the_module_exits_2_as_a_process(tmp_path):
    run = subprocess.run([sys.executable, "-m", "flcourse", "fedavg", "--fraction", "2",
                          "--out", str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)

    assert run.returncode == 2
    assert run.stderr == ("python -m flcourse fedavg: error: The 'fraction_fit' parameter of FedAvg "
                          "must be a float in (0, 1]. Got 2.0 instead.\n")


# ---- a run that stops early keeps every finished round -------------------------------------

TINY = ["--clients", "4", "--fraction", "0.5", "--local-epochs", "1", "--batch-size", "inf", "--no-progress"]
DETERMINISTIC_KEYS = ["round", "n_selected", "n_dropped", "dropped", "bytes_sent", "bytes_received",
                      "test_loss", "test_accuracy"]


def strict_json(path):
    """The JSON in ``path``, refusing NaN and Infinity (not standard JSON)."""
    def refuse(constant):
        raise ValueError(f"{path} holds {constant}, which is not standard JSON")
    return json.loads(Path(path).read_text(), parse_constant=refuse)


def assert_whole_rounds(history, n_rounds=None):
    """Rounds 0..N in order, every key with one entry per round."""
    rounds = history["round"]
    assert rounds == list(range(len(rounds))) and (n_rounds is None or len(rounds) == n_rounds + 1)
    assert {key: len(values) for key, values in history.items()} == {key: len(rounds) for key in history}


@pytest.mark.parametrize("out, reason", [
    (lambda tmp: tmp / "a-file" / "out", "Not a directory"),
    (lambda tmp: tmp / "a-file", "it is a file"),
    (lambda tmp: tmp / ("x" * 256) / "out", "File name too long"),
], ids=["parent-is-a-file", "folder-is-a-file", "name-over-255-bytes"])
def test_an_unusable_output_folder_fails_before_any_data_is_built(out, reason, tmp_path, capsys, monkeypatch):
    (tmp_path / "a-file").write_text("")
    folder = out(tmp_path)
    monkeypatch.setattr(fl, "load_digits", lambda **kwargs: pytest.fail("built data before checking --out"))

    code = main(["fedavg", *TINY, "--rounds", "1", "--out", str(folder)])

    stderr = capsys.readouterr().err
    assert code == 2
    assert stderr == f"python -m flcourse fedavg: error: The output folder {folder} cannot " \
                     f"{'be used' if reason == 'it is a file' else 'be written'}: {reason}.\n"


def test_the_probe_file_is_gone_after_the_check(tmp_path):
    main(["fedavg", *TINY, "--rounds", "1", "--out", str(tmp_path / "run")])

    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "checkpoint.flc", "checkpoint.flc.history.jsonl", "history.json", "history.png"]


def start_run(out):
    """``python -m flcourse fedavg`` for 100,000 rounds, with SIGINT at its default as on a terminal
    (pytest may run with SIGINT ignored, and an ignored signal is inherited across exec)."""
    return subprocess.Popen([sys.executable, "-m", "flcourse", "fedavg", *TINY, "--rounds", "100000",
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for_rounds(run, path, n_rounds, timeout=60.0) -> int:
    """Wait until history.json holds round ``n_rounds``; return the last round it holds then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run.poll() is not None:
            pytest.fail(f"the run ended early with code {run.returncode}: {run.stderr.read()}")
        if path.exists() and strict_json(path)["round"][-1] >= n_rounds:
            return strict_json(path)["round"][-1]
        time.sleep(0.02)
    pytest.fail(f"{path} did not reach round {n_rounds} within {timeout} s")


@pytest.fixture
def running(tmp_path):
    run = start_run(tmp_path / "run")
    yield run, tmp_path / "run" / "history.json"
    if run.poll() is None:
        run.kill()
    run.wait()
    run.stdout.close()
    run.stderr.close()


def test_a_killed_run_leaves_valid_json_holding_every_finished_round(running):
    run, path = running
    seen = wait_for_rounds(run, path, 3)

    run.kill()  # SIGKILL: no handler, no clean-up runs
    run.wait(timeout=20)

    history = strict_json(path)
    assert run.returncode == -signal.SIGKILL
    assert history["round"][-1] >= seen
    assert_whole_rounds(history)


@pytest.mark.parametrize("sent, code, what", [
    (signal.SIGINT, 130, "interrupted"),
    (signal.SIGTERM, 143, r"terminated \(SIGTERM\)"),
], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_exits_with_one_line_naming_the_rounds_kept(sent, code, what, running):
    run, path = running
    wait_for_rounds(run, path, 2)

    os.killpg(run.pid, sent)  # what Ctrl-C does: the signal to the whole foreground group
    run.wait(timeout=20)

    stderr = run.stderr.read()
    last = re.fullmatch(rf"python -m flcourse fedavg: {what} after round (\d+); {re.escape(str(path))} "
                        rf"holds rounds 0\.\.(\d+)\n", stderr)
    assert run.returncode == code, stderr
    assert last and last.group(1) == last.group(2), stderr
    assert_whole_rounds(strict_json(path), int(last.group(1)))


def test_ctrl_c_during_round_1_keeps_round_0(tmp_path, capsys, monkeypatch):
    from flcourse.federated import FedAvg

    def interrupt(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(FedAvg, "configure_fit", interrupt)

    code = main(["fedavg", *TINY, "--rounds", "5", "--out", str(tmp_path)])

    assert code == 130
    assert capsys.readouterr().err == (f"python -m flcourse fedavg: interrupted after round 0; "
                                       f"{tmp_path / 'history.json'} holds rounds 0..0\n")
    assert_whole_rounds(strict_json(tmp_path / "history.json"), 0)


def test_ctrl_c_before_the_server_starts_says_nothing_was_written(tmp_path, capsys, monkeypatch):
    def interrupt(**kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(fl, "load_digits", interrupt)

    code = main(["fedavg", *TINY, "--rounds", "5", "--out", str(tmp_path)])

    assert code == 130
    assert capsys.readouterr().err == (f"python -m flcourse fedavg: interrupted before any round finished; "
                                       f"nothing was written to {tmp_path / 'history.json'}\n")
    assert not (tmp_path / "history.json").exists()


@pytest.mark.parametrize("stop", ["finished", "interrupted"])
def test_resume_ends_with_the_history_of_an_uninterrupted_run(stop, tmp_path, monkeypatch, capsys):
    arguments = ["fedavg", *TINY, "--partition", "dirichlet:0.5", "--local-epochs", "2", "--batch-size", "5"]
    assert main([*arguments, "--rounds", "6", "--out", str(tmp_path / "whole")]) == 0
    if stop == "finished":
        assert main([*arguments, "--rounds", "3", "--out", str(tmp_path / "parts")]) == 0
    else:  # Ctrl-C arrives right after round 3 is written
        recorded = Recorder.__call__

        def interrupt_after_round_3(recorder, server_round, server):
            recorded(recorder, server_round, server)
            if server_round == 3:
                raise KeyboardInterrupt
        monkeypatch.setattr(Recorder, "__call__", interrupt_after_round_3)
        assert main([*arguments, "--rounds", "6", "--out", str(tmp_path / "parts")]) == 130
        monkeypatch.undo()
    before = strict_json(tmp_path / "parts" / "history.json")
    assert_whole_rounds(before, 3)

    code = main([*arguments, "--rounds", "6", "--resume", "--out", str(tmp_path / "parts")])

    whole, parts = strict_json(tmp_path / "whole" / "history.json"), strict_json(tmp_path / "parts" / "history.json")
    assert code == 0
    assert {k: parts[k] for k in DETERMINISTIC_KEYS} == {k: whole[k] for k in DETERMINISTIC_KEYS}
    assert parts["wall_seconds"][:4] == before["wall_seconds"]  # rounds 1..3 kept, not run again
    assert capsys.readouterr().out.splitlines()[-1].startswith("round 6: test accuracy ")


@pytest.mark.parametrize("changed, message", [
    (["--lr", "0.2"], "strategy FedAvg's 'lr' is 0.1 in the checkpoint and 0.2 here."),
    (["--clients", "5"], "the client set differs: 4 clients in the checkpoint, 5 here."),
    (["--dataset", "breast_cancer"], "model SoftmaxRegression's 'n_classes' is 10 in the checkpoint and 2 here."),
    ([], "The 'n_rounds' parameter of Server.run must be at least the round of the checkpoint"),
    (["--seed", "1"], "resume with the same)"),  # another split of the same data: say which options set it
], ids=["other-lr", "other-clients", "other-dataset", "fewer-rounds", "other-seed"])
def test_resume_with_other_arguments_exits_2_saying_what_differs(changed, message, tmp_path, capsys):
    main(["fedavg", *TINY, "--rounds", "2", "--out", str(tmp_path)])
    capsys.readouterr()

    code = main(["fedavg", *TINY, "--rounds", "1", "--resume", *changed, "--out", str(tmp_path)])

    stderr = capsys.readouterr().err
    assert code == 2
    assert len(stderr.splitlines()) == 1 and message in stderr, stderr
    assert_whole_rounds(strict_json(tmp_path / "history.json"), 2)  # left as it was


def test_resume_without_a_checkpoint_exits_2(tmp_path, capsys):
    code = main(["fedavg", *TINY, "--rounds", "2", "--resume", "--out", str(tmp_path)])

    assert code == 2
    assert capsys.readouterr().err == (f"python -m flcourse fedavg: error: Cannot resume from "
                                       f"{tmp_path / 'checkpoint.flc'}: the file does not exist "
                                       f"(nothing was saved there yet).\n")


def test_a_run_that_fails_in_round_3_exits_1_with_one_line_and_keeps_rounds_0_to_2(tmp_path, capsys, monkeypatch):
    from flcourse.federated import FedAvg
    aggregate, calls = FedAvg.aggregate_fit, []

    def diverge_in_round_3(strategy, server_round, params, results, failures):
        calls.append(1)
        if len(calls) == 3:
            raise FloatingPointError("overflow encountered in multiply")
        return aggregate(strategy, server_round, params, results, failures)
    monkeypatch.setattr(FedAvg, "aggregate_fit", diverge_in_round_3)

    code = main(["fedavg", *TINY, "--rounds", "5", "--out", str(tmp_path)])

    assert code == 1
    assert capsys.readouterr().err == (f"python -m flcourse fedavg: error: run failed in round 3: overflow "
                                       f"encountered in multiply ({tmp_path / 'history.json'} holds rounds 0..2)\n")
    assert_whole_rounds(strict_json(tmp_path / "history.json"), 2)
    assert (tmp_path / "history.png").exists()


def test_a_full_disk_after_round_2_exits_1_and_the_history_keeps_rounds_0_to_1(tmp_path, capsys, monkeypatch):
    from flcourse.federated.history import HistoryWriter
    write, calls = HistoryWriter.write, []

    def disk_full_from_round_2(writer):
        calls.append(1)
        if len(calls) >= 2:
            raise OSError(28, "No space left on device")
        return write(writer)
    monkeypatch.setattr(HistoryWriter, "write", disk_full_from_round_2)

    code = main(["fedavg", *TINY, "--rounds", "5", "--out", str(tmp_path)])

    assert code == 1
    assert capsys.readouterr().err == (f"python -m flcourse fedavg: error: run failed in round 2: [Errno 28] No "
                                       f"space left on device ({tmp_path / 'history.json'} holds rounds 0..1)\n")
    assert_whole_rounds(strict_json(tmp_path / "history.json"), 1)


def test_a_diverging_run_exits_1_as_a_process(tmp_path):
    run = subprocess.run([sys.executable, "-m", "flcourse", "fedavg", *TINY, "--rounds", "3", "--lr", "1e300",
                          "--out", str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)

    assert run.returncode == 1
    assert re.fullmatch(r"python -m flcourse fedavg: error: run failed in round 1: .+ \(\S+ holds rounds 0\.\.0\)\n",
                        run.stderr), run.stderr


@pytest.mark.parametrize("strategy, options", [
    ("fedprox", ["--mu", "1", "--stragglers", "0.5", "--local-epochs", "2"]),
    ("scaffold", ["--server-lr", "0.5"]),
    ("fedavgm", ["--server-momentum", "0.5"]),
])
def test_run_takes_any_strategy_with_its_constructor_parameters(tmp_path, strategy, options):
    from flcourse.federated import Server, available_strategies, make_clients

    arguments = ["--clients", "4", "--fraction", "0.5", "--batch-size", "inf", "--no-progress", "--seed", "0"]
    code = main(["run", "--strategy", strategy, *arguments, *options, "--rounds", "2", "--out", str(tmp_path)])

    assert code == 0
    history = strict_json(tmp_path / "history.json")
    assert_whole_rounds(history, 2)
    data = fl.load_digits(seed=0)
    model = fl.SoftmaxRegression(n_features=data.n_features, n_classes=data.n_classes)
    names = [option[2:].replace("-", "_") for option in options[::2]]
    values = {name: type(getattr(available_strategies()[strategy](), name))(value)
              for name, value in zip(names, options[1::2])}
    settings = {"fraction_fit": 0.5, "local_epochs": 5, "batch_size": float("inf"), **values}
    clients = make_clients(model, data.X_train, data.y_train, fl.make_partition("iid", data.y_train, 4, seed=0))
    expected = Server(model, available_strategies()[strategy](**settings), clients,
                      test_set=(data.X_test, data.y_test), seed=0).run(2)
    assert history["test_accuracy"] == expected.history_["test_accuracy"]


def test_an_option_the_strategy_does_not_take_is_one_line_and_exit_2(tmp_path, capsys):
    code = main(["run", "--strategy", "fedavg", "--mu", "1", "--no-progress", "--out", str(tmp_path)])

    assert code == 2
    assert capsys.readouterr().err.startswith("python -m flcourse run: error: The option --mu is not a "
                                              "parameter of FedAvg. It takes batch_size, fraction_fit,")
