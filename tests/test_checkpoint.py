"""Checkpoints: exact round trips, every damage and mismatch refused by name, constant cost."""
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest

import flcourse as fl
from flcourse.federated import history as history_module
from flcourse.federated.checkpoint import (PREAMBLE, CheckpointError, CheckpointWriter, HistoryWriter, constructor_params,
                                 history_path, load_checkpoint, load_history, run_identity, save_history)
from flcourse.federated import FedAvg, FedSGD

MODEL = fl.SoftmaxRegression(n_features=64, n_classes=10)
CLIENTS = [(cid, 100 + cid) for cid in range(10)]


def identity(model=MODEL, strategy=None, clients=CLIENTS):
    return run_identity(model, strategy or FedAvg(batch_size=math.inf), clients)


def row(server_round, **extra):
    return {"round": server_round, "n_selected": 2, "dropped": [], "bytes_sent": 10_400,
            "test_loss": 0.1 + 0.2 * server_round, "test_accuracy": 1 / 3, **extra}


def write_run(path, n_rounds=3, *, ident=None, params=None, server_round=None, seed=0):
    """A checkpoint of ``n_rounds`` rounds; returns what was saved (params, rng state, rows)."""
    rng = np.random.default_rng(seed)
    rows = [row(0)] + [row(r) for r in range(1, n_rounds + 1)]
    with CheckpointWriter(path, ident or identity()) as writer:
        writer.start(rows[:1])
        for r in range(1, n_rounds + 1):
            saved = rng.normal(size=MODEL.n_params) if params is None else params
            writer.save(r if server_round is None else server_round, saved, rng.bit_generator.state, [rows[r]])
    return saved, rng.bit_generator.state, rows


def assert_refused(path, message, ident=None):
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path, ident or identity())
    text = str(error.value)
    assert text.startswith(f"Cannot resume from {path}: ") and text.count(". ") == 0, text
    assert re.search(message, text), text
    return text


# ---- identity ------------------------------------------------------------------------------

def test_constructor_params_are_json_values_with_inf_as_a_string():
    params = constructor_params(FedAvg(fraction_fit=np.float64(0.5), local_epochs=np.int64(2), batch_size=math.inf))

    assert params == {"fraction_fit": 0.5, "local_epochs": 2, "batch_size": "inf", "lr": 0.1, "stragglers": 0.0}
    assert type(params["fraction_fit"]) is float and type(params["local_epochs"]) is int
    assert json.loads(json.dumps(params, allow_nan=False)) == params


def test_constructor_params_describe_a_wrapped_object_by_its_own_params():
    class Wrapper:
        def __init__(self, inner, *, scale=1.0):
            self.inner, self.scale = inner, scale

    params = constructor_params(Wrapper(FedSGD(lr=0.5), scale=-math.inf))

    assert params == {"inner": {"class": "flcourse.federated.strategies.fedavg.FedSGD", "params": {"fraction_fit": 1.0, "lr": 0.5}},
                      "scale": "-inf"}


@pytest.mark.parametrize("value, message", [
    (np.random.default_rng(0), "The value of Holder's 'value' is a Generator"),
    (np.zeros(3), "The value of Holder's 'value' is a ndarray"),
    (None, "Holder stores no attribute 'value'"),
])
def test_constructor_params_refuse_what_they_cannot_identify(value, message):
    class Holder:
        def __init__(self, value):
            if value is not None:
                self.value = value

    with pytest.raises(TypeError, match=re.escape(message)):
        constructor_params(Holder(value))


def test_identity_comes_from_constructor_params_never_from_repr():
    class Disguised(FedAvg):  # a subclass whose repr passes for its parent's
        def __repr__(self):
            return repr(FedAvg())

    assert repr(Disguised()) == repr(FedAvg())
    assert identity(strategy=Disguised()) != identity(strategy=FedAvg())
    assert identity(strategy=FedSGD(lr=0.5)) != identity(strategy=FedSGD(lr=0.2))


def test_client_fingerprint_depends_on_the_set_of_clients_not_their_order():
    assert identity(clients=CLIENTS[::-1]) == identity()
    assert identity(clients=CLIENTS[:-1] + [(9, 110)]) != identity()


# ---- round trip ----------------------------------------------------------------------------

def test_round_trip_is_bit_identical(tmp_path):
    path = tmp_path / "run.flc"
    params = np.array([0.1 + 0.2, -0.0, 5e-324, 1e308, -1 / 3] + [np.pi] * (MODEL.n_params - 5))
    rows = [row(0), row(1, client_loss=2 / 3, dropped=[[4, "client 4 hung"]]), row(2, test_loss=math.nan)]
    rng = np.random.default_rng(7)
    rng.normal(size=3)
    state = rng.bit_generator.state
    extra = {"momentum": np.arange(4.0) / 3, "step": 2, "beta": 0.9}

    with CheckpointWriter(path, identity()) as writer:
        writer.start(rows[:1])
        writer.save(1, -params, state, rows[1:2])
        writer.save(2, params, state, rows[2:], extra_state=extra)
    resumed = load_checkpoint(path, identity())

    expected = {}
    for r in rows:
        for key, value in r.items():
            expected.setdefault(key, []).append(value)
    assert resumed.server_round == 2
    assert resumed.params.tobytes() == params.tobytes()
    assert resumed.rng_state == state
    assert json.dumps(resumed.history) == json.dumps(expected)  # NaN compares equal as text
    assert resumed.history["client_loss"] == [2 / 3]  # a key from round 1 on: one entry
    assert resumed.extra_state["momentum"].tobytes() == extra["momentum"].tobytes()
    assert {k: v for k, v in resumed.extra_state.items() if k != "momentum"} == {"step": 2, "beta": 0.9}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.flc", "run.flc.history.jsonl"]


def test_a_restored_rng_draws_the_same_numbers(tmp_path):
    _, state, _ = write_run(tmp_path / "run.flc")
    rng = np.random.default_rng()
    rng.bit_generator.state = load_checkpoint(tmp_path / "run.flc", identity()).rng_state
    reference = np.random.default_rng()
    reference.bit_generator.state = state

    assert np.array_equal(rng.integers(2**63, size=5), reference.integers(2**63, size=5))


def test_an_inf_hyper_parameter_survives_the_round_trip(tmp_path):
    write_run(tmp_path / "run.flc", ident=identity(strategy=FedAvg(batch_size=math.inf)))

    assert load_checkpoint(tmp_path / "run.flc", identity(strategy=FedAvg(batch_size=math.inf))).server_round == 3


# ---- another run ---------------------------------------------------------------------------

@pytest.mark.parametrize("other, message", [
    (dict(model=fl.SoftmaxRegression(n_features=64, n_classes=10, l2=0.1)),
     "model SoftmaxRegression's 'l2' is 0.0 in the checkpoint and 0.1 here"),
    (dict(model=fl.SoftmaxRegression(n_features=60, n_classes=10)),
     "model SoftmaxRegression's 'n_features' is 64 in the checkpoint and 60 here"),
    (dict(model=fl.LogisticRegression(n_features=64)),
     "the model class is flcourse.models.SoftmaxRegression in the checkpoint and "
     "flcourse.models.LogisticRegression here"),
    (dict(strategy=FedSGD()), "the strategy class is flcourse.federated.strategies.fedavg.FedAvg in the "
                              "checkpoint and flcourse.federated.strategies.fedavg.FedSGD here"),
    (dict(strategy=FedAvg(batch_size=10)), "strategy FedAvg's 'batch_size' is inf in the checkpoint and 10 here"),
    (dict(strategy=FedAvg(batch_size=math.inf, lr=0.5)), "strategy FedAvg's 'lr' is 0.1 in the checkpoint and 0.5 here"),
    (dict(clients=CLIENTS[:5]), "the client set differs: 10 clients in the checkpoint, 5 here"),
    (dict(clients=[(cid, 50) for cid in range(10)]),
     r"the client set differs: 10 clients in both, but other ids, numbers of examples or data "
     r"\(fingerprint [0-9a-f]{12} in the checkpoint, [0-9a-f]{12} here\)"),
])
def test_another_run_is_refused_naming_what_differs_with_both_values(other, message, tmp_path):
    write_run(tmp_path / "run.flc")

    assert_refused(tmp_path / "run.flc", re.escape(message) if "fingerprint" not in message else message,
                   identity(**other))


def test_another_number_of_params_is_refused_with_both_numbers(tmp_path):
    write_run(tmp_path / "run.flc")
    current = dict(identity(), n_params=610)

    assert_refused(tmp_path / "run.flc", "n_params is 650 in the checkpoint and 610 here", current)


# ---- damage --------------------------------------------------------------------------------

def slot_offset(path, index, within=0):
    """Where slot ``index`` of the state file at ``path`` starts (plus ``within``)."""
    capacity = int(path.read_bytes()[:PREAMBLE].split(b"\n")[1].split()[2])
    return PREAMBLE + index * capacity + within


def in_both_slots(damage_at):
    """Damage the same byte of both slots: no whole copy of the state is left."""
    def damage(data, path):
        for index in (0, 1):
            data = damage_at(data, slot_offset(path, index, 60))
        return data
    return damage


def flip_at(data, offset):
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1:]


@pytest.mark.parametrize("damage, message", [
    (lambda data, path: b"", r"the file is damaged \(it is empty\)"),
    (lambda data, path: data[:7], r"the file is damaged or not an flcourse checkpoint \(it does not start with 'FLCOURSE CHECKPOINT '\)"),
    (lambda data, path: data[:30], r"the file is damaged \(its first lines are cut short\)"),
    (lambda data, path: data[:slot_offset(path, 0, 100)], r"the file is damaged \(no copy of the state in it is whole"),
    (lambda data, path: data[:PREAMBLE], r"no copy of the state in it is whole"),
    (in_both_slots(flip_at), r"no copy of the state in it is whole: truncated or changed"),
    (lambda data, path: data.replace(b"slots 2 ", b"slots 3 ", 1), r"its second line does not describe its slots"),
    (lambda data, path: bytes(np.random.default_rng(0).integers(0, 256, 6000, dtype=np.uint8)),
     "the file is damaged or not an flcourse checkpoint"),
    (lambda data, path: b"PK\x03\x04" + data, "the file is damaged or not an flcourse checkpoint"),
    (lambda data, path: data.replace(b"CHECKPOINT 1\n", b"CHECKPOINT 2\n", 1),
     "it is in checkpoint format 2 and this flcourse reads format 1"),
], ids=["empty", "cut-in-magic", "cut-in-preamble", "cut-in-first-slot", "no-slots", "flip-in-both-slots",
        "bad-slots-line", "garbage", "zip-prefix", "format-2"])
def test_a_damaged_file_is_refused_by_name(damage, message, tmp_path):
    path = tmp_path / "run.flc"
    write_run(path)
    path.write_bytes(damage(path.read_bytes(), path))

    assert_refused(path, message)


@pytest.mark.parametrize("damage", [
    lambda data, path: flip_at(data, slot_offset(path, 1, 100)),  # in the newest slot's header
    lambda data, path: flip_at(data, slot_offset(path, 1, 20)),  # in its checksum
    lambda data, path: data[:slot_offset(path, 1, 300)],  # cut inside it
], ids=["flip-in-header", "flip-in-checksum", "cut"])
def test_a_torn_newest_slot_resumes_from_the_round_before_and_says_so(damage, tmp_path):
    path = tmp_path / "run.flc"
    write_run(path, n_rounds=3)  # round 3 is in slot 1, round 2 in slot 0
    path.write_bytes(damage(path.read_bytes(), path))

    resumed = load_checkpoint(path, identity())

    assert resumed.server_round == 2 and resumed.fell_back
    assert resumed.history["round"] == [0, 1, 2]


def test_a_missing_file_is_refused_saying_so(tmp_path):
    assert_refused(tmp_path / "run.flc", r"the file does not exist")


def test_a_checkpoint_written_by_numpy_savez_is_refused_as_not_a_checkpoint(tmp_path):
    with open(tmp_path / "run.flc", "wb") as file:  # what Server wrote before this module
        np.savez(file, params=np.zeros(MODEL.n_params), state="{}")

    assert_refused(tmp_path / "run.flc", "not an flcourse checkpoint")


@pytest.mark.parametrize("params, message", [
    (np.r_[np.zeros(MODEL.n_params - 3), np.nan, np.inf, -np.inf],
     r"its params hold 3 non-finite numbers \(NaN or inf\)"),
    (np.zeros(610), r"its params have shape \(610,\), the model needs \(650,\)"),
])
def test_params_that_cannot_continue_the_run_are_refused(params, message, tmp_path):
    write_run(tmp_path / "run.flc", params=params)

    assert_refused(tmp_path / "run.flc", message)


@pytest.mark.parametrize("server_round, message", [
    (-5, "its round must be an int >= 0, but it is -5"),
    (2.0, "its round must be an int >= 0, but it is 2.0"),
    (True, "its round must be an int >= 0, but it is True"),
])
def test_a_bad_round_is_refused(server_round, message, tmp_path):
    write_run(tmp_path / "run.flc", server_round=server_round)

    assert_refused(tmp_path / "run.flc", re.escape(message))


@pytest.mark.parametrize("rng_state", [
    {"bit_generator": "PCG64", "state": "seven"},
    {"bit_generator": "seed"},  # a function of numpy.random, never called
    "PCG64",
], ids=["bad-state", "not-a-bit-generator", "not-a-dict"])
def test_a_bad_rng_state_is_refused(rng_state, tmp_path, monkeypatch):
    monkeypatch.setattr(np.random, "seed", lambda *args: pytest.fail("called numpy.random.seed"))
    with CheckpointWriter(tmp_path / "run.flc", identity()) as writer:
        writer.start([row(0)])
        writer.save(1, np.zeros(MODEL.n_params), rng_state, [row(1)])

    assert_refused(tmp_path / "run.flc", "its rng_state is not the state of a numpy bit generator")


def drop_line(index):
    return lambda lines: lines[:index] + lines[index + 1:]


@pytest.mark.parametrize("damage, message", [
    (None, r"its history file \S+run.flc.history.jsonl is missing"),
    (lambda lines: lines[:-1], r"its history file \S+ holds 3 rows, fewer than the 4 of rounds 0..3"),
    (lambda lines: [], r"its history file \S+ holds 0 rows, fewer than the 4 of rounds 0..3"),
    (lambda lines: lines[:-1] + [lines[-1][:-1]], r"holds 3 rows, fewer than the 4"),  # last row cut
    (lambda lines: lines[:2] + [lines[3], lines[2]], r"is not rounds 0..3 in order \(line 3 is round 3, expected 2\)"),
    (lambda lines: lines[:1] + lines[2:] + [lines[1]],
     r"is not rounds 0..3 in order \(line 2 is round 2, expected 1\)"),
    (lambda lines: lines[:1] + [b"{not json\n"] + lines[2:], r"is damaged \(line 2 is not JSON\)"),
    (lambda lines: lines[:1] + [b"[1]\n"] + lines[2:], r"line 2 is round \[1\], expected 1"),
], ids=["missing", "short", "empty", "last-row-cut", "swapped", "moved", "not-json", "not-a-row"])
def test_a_missing_short_or_unordered_history_is_refused(damage, message, tmp_path):
    path = tmp_path / "run.flc"
    write_run(path)
    if damage is None:
        history_path(path).unlink()
    else:
        history_path(path).write_bytes(b"".join(damage(history_path(path).read_bytes().splitlines(keepends=True))))

    assert_refused(path, message)


# ---- crashes -------------------------------------------------------------------------------

class Killed(BaseException):
    """Stands for a SIGKILL: nothing after it runs."""


def kill(*args, **kwargs):
    raise Killed


def torn_write(writer, slot):
    """Write half the slot where it belongs, then die: what a SIGKILL mid-write leaves."""
    writer._state.seek(PREAMBLE + (writer._sequence % 2) * writer._capacity)
    writer._state.write(slot[:len(slot) // 2])
    raise Killed


@pytest.mark.parametrize("where", ["history append", "state write"])
def test_a_process_killed_while_saving_resumes_from_the_round_before(where, tmp_path, monkeypatch):
    path = tmp_path / "run.flc"
    saved, _, rows = write_run(path, n_rounds=3)
    writer = CheckpointWriter(path, identity())
    writer.resume(3)
    if where == "history append":
        monkeypatch.setattr(writer, "_append", kill)
    else:  # round 4's state half written over round 2's slot
        monkeypatch.setattr(writer, "_write_slot", lambda slot: torn_write(writer, slot))

    with pytest.raises(Killed):
        writer.save(4, np.ones(MODEL.n_params), {}, [row(4)])
    monkeypatch.undo()
    writer.close()
    resumed = load_checkpoint(path, identity())

    assert resumed.server_round == 3 and resumed.params.tobytes() == saved.tobytes()
    assert resumed.history["round"] == [0, 1, 2, 3]
    assert resumed.fell_back == (where == "state write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.flc", "run.flc.history.jsonl"]


def test_rows_after_the_saved_round_and_a_half_written_row_are_ignored(tmp_path):
    path = tmp_path / "run.flc"
    write_run(path, n_rounds=3)
    with open(history_path(path), "a") as file:  # killed after appending round 4, inside round 5's
        file.write(json.dumps(row(4)) + "\n" + '{"round": 5, "test_lo')

    assert load_checkpoint(path, identity()).history["round"] == [0, 1, 2, 3]


@pytest.mark.parametrize("resume_first", [True, False])
def test_going_on_after_a_crash_drops_the_rows_after_the_saved_round(resume_first, tmp_path):
    path = tmp_path / "run.flc"
    _, state, _ = write_run(path, n_rounds=3)
    with open(history_path(path), "a") as file:
        file.write(json.dumps(row(4)) + "\n" + '{"round": 5, "te')
    resumed = load_checkpoint(path, identity())

    with CheckpointWriter(path, identity()) as writer:
        if resume_first:
            writer.resume(resumed.server_round)
        writer.save(4, resumed.params, state, [row(4, test_loss=-1.0)])
    history = load_checkpoint(path, identity()).history

    assert history["round"] == [0, 1, 2, 3, 4]
    assert history["test_loss"][-1] == -1.0


def test_starting_a_new_run_forgets_the_old_checkpoint(tmp_path):
    path = tmp_path / "run.flc"
    write_run(path, n_rounds=3)

    with CheckpointWriter(path, identity()) as writer:
        writer.start([row(0)])

    assert not path.exists()
    assert history_path(path).read_text() == json.dumps(row(0)) + "\n"


# ---- cost ----------------------------------------------------------------------------------

def bytes_written() -> int:
    """Bytes this process has passed to write() so far (Linux's /proc/self/io)."""
    text = Path("/proc/self/io").read_text()
    return int(re.search(r"wchar: (\d+)", text).group(1))


def bytes_of_save(tmp_path, rows_before) -> int:
    path, ident = tmp_path / f"run{rows_before}.flc", identity()
    params, state = np.random.default_rng(0).normal(size=MODEL.n_params), np.random.default_rng(0).bit_generator.state
    with CheckpointWriter(path, ident) as writer:
        writer.start([row(r) for r in range(rows_before)])
        writer.save(rows_before, params, state, [row(rows_before)])  # warm-up: files open
        before = bytes_written()
        writer.save(rows_before + 1, params, state, [row(rows_before + 1)])
        return bytes_written() - before


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="counts bytes written through Linux's /proc/self/io")
def test_the_10000th_save_writes_as_many_bytes_as_the_10th(tmp_path):
    tenth, ten_thousandth = bytes_of_save(tmp_path, 9), bytes_of_save(tmp_path, 9_999)

    assert 6_000 < tenth < 8_000  # 650 params of 8 bytes, a header and one history row
    assert abs(ten_thousandth - tenth) < 50  # a few more digits in the round number


def test_the_state_file_does_not_grow_with_the_run(tmp_path):
    write_run(tmp_path / "short.flc", n_rounds=10)
    write_run(tmp_path / "long.flc", n_rounds=300)

    assert abs((tmp_path / "long.flc").stat().st_size - (tmp_path / "short.flc").stat().st_size) < 20
    assert history_path(tmp_path / "long.flc").stat().st_size > 20 * history_path(tmp_path / "short.flc").stat().st_size


# ---- history.json --------------------------------------------------------------------------

def strict_loads(text):
    def refuse(constant):
        raise ValueError(f"not standard JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


def test_save_history_writes_standard_json_with_a_note_on_non_finite_values(tmp_path):
    history = {"round": [0, 1, 2], "test_loss": [np.float32(0.5), math.nan, np.inf],
               "bytes_sent": [np.int64(0), np.int64(10), np.int64(20)], "grad_norm": [np.array([1.5, -np.inf])],
               "client_loss": [], "test_accuracy": [0.1, 0.2, 0.30000000000000004]}

    save_history(history, tmp_path / "history.json")
    written = strict_loads((tmp_path / "history.json").read_text())
    loaded = load_history(tmp_path / "history.json")

    assert list(written)[0] == "note"
    assert written["note"] == ("NaN or infinite values of test_loss, grad_norm were written as null "
                               "(standard JSON has no NaN or inf)")
    assert loaded == {"round": [0, 1, 2], "test_loss": [0.5, None, None], "bytes_sent": [0, 10, 20],
                      "grad_norm": [[1.5, None]], "client_loss": [], "test_accuracy": [0.1, 0.2, 0.30000000000000004]}
    assert type(loaded["bytes_sent"][1]) is int
    assert [p.name for p in tmp_path.iterdir()] == ["history.json"]


def test_a_failed_history_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
    save_history({"round": [0]}, tmp_path / "history.json")
    monkeypatch.setattr(os, "replace", kill)

    with pytest.raises(Killed):
        save_history({"round": [0, 1]}, tmp_path / "history.json")
    monkeypatch.undo()

    assert load_history(tmp_path / "history.json") == {"round": [0]}
    assert [p.name for p in tmp_path.iterdir()] == ["history.json"]


def test_a_finite_history_has_no_note_and_round_trips_exactly(tmp_path):
    history = {"round": [0, 1], "test_loss": [1 / 3, 2.5e-310], "dropped": [[], [[3, "client 3 hung"]]]}

    save_history(history, tmp_path / "history.json")

    assert "note" not in strict_loads((tmp_path / "history.json").read_text())
    assert load_history(tmp_path / "history.json") == history


def test_the_history_writer_writes_what_save_history_writes_after_every_round(tmp_path):
    history, writer = {}, HistoryWriter(tmp_path / "live.json")
    for r in range(5):
        for key, value in row(r, test_loss=math.nan if r == 3 else r / 7).items():
            history.setdefault(key, []).append(value)
        writer.update(history).write()
        save_history(history, tmp_path / "whole.json")

        assert (tmp_path / "live.json").read_bytes() == (tmp_path / "whole.json").read_bytes()


def test_the_history_writer_encodes_each_value_once(tmp_path, monkeypatch):
    history = {key: [value] * 10_000 for key, value in row(0).items()}
    writer = HistoryWriter(tmp_path / "history.json").update(history)
    encoded = []
    original = history_module._encode_values
    monkeypatch.setattr(history_module, "_encode_values", lambda values: encoded.append(len(values)) or original(values))
    for values in history.values():
        values.append(values[-1])

    writer.update(history).write()

    assert encoded == [1] * len(history)
    assert load_history(tmp_path / "history.json")["round"] == [0] * 10_001


def test_a_changed_digit_in_the_history_is_refused(tmp_path):
    path = tmp_path / "run.flc"
    write_run(path)
    data = history_path(path).read_bytes()
    history_path(path).write_bytes(data.replace(b'"bytes_sent": 10400', b'"bytes_sent": 10401', 1))

    assert_refused(path, r"its history file \S+ is damaged \(rows 0..3 do not match the checksum saved with the state\)")
