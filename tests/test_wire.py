"""What travels between processes: numbers, strings, lists, dicts and numeric arrays, exactly;
never code, and nothing the receiver did not agree to read."""
import math
import pickle

import numpy as np
import pytest

from flcourse.runtime import HEADER, WireError, decode, encode, encoded_size


def round_trip(message):
    frame = encode(message)
    (length,) = HEADER.unpack_from(frame)
    assert length == len(frame) - HEADER.size
    return decode(frame[HEADER.size:])


@pytest.mark.parametrize("message", [
    None, True, 0, -7, 2**200, 1.5, "fit", [], {}, [1, [2, [3]]],
    {"lr": 0.1, "batch_size": None, "seed": 2**63 - 1, "server_round": 3},
    {"~array": "a key that looks like a tag", "~dict": 1},
])
def test_plain_values_arrive_unchanged(message):
    assert round_trip(message) == message


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_infinities_arrive_unchanged(value):
    assert round_trip({"batch_size": value}) == {"batch_size": value}


def test_nan_arrives_as_nan():
    assert math.isnan(round_trip([math.nan])[0])


@pytest.mark.parametrize("array", [
    np.arange(6, dtype=np.float64).reshape(2, 3) / 7, np.array([1, -2], dtype=np.int32),
    np.array([True, False]), np.zeros((0, 4)), np.array([np.nan, np.inf, -0.0]),
    np.asfortranarray(np.arange(12.0).reshape(3, 4)), np.arange(10.0)[::3],
])
def test_arrays_arrive_bit_for_bit_with_dtype_and_shape(array):
    received = round_trip(("ok", [array, 3, {}]))[1][0]

    assert type(received) is np.ndarray and received.dtype == array.dtype and received.shape == array.shape
    assert received.tobytes() == np.ascontiguousarray(array).tobytes()
    assert received.flags.writeable


def test_tuples_arrive_as_lists_and_numpy_scalars_as_python_numbers():
    received = round_trip((np.float32(0.5), np.int64(3), np.bool_(True)))

    assert received == [0.5, 3, True] and [type(v) for v in received] == [float, int, bool]


class Subclass(np.ndarray):
    pass


@pytest.mark.parametrize("message, reason", [
    (np.array([object()]), "only plain numeric arrays"),
    (np.array(["a"]), "only plain numeric arrays"),
    (np.zeros(3).view(Subclass), "only plain numeric arrays travel, not Subclass"),
    ({1: "int key"}, "dict keys must be strings"),
    (object(), "values of type object do not travel"),
    ({"f": lambda: 0}, "values of type function do not travel"),
])
def test_what_cannot_travel_is_refused_with_the_reason(message, reason):
    with pytest.raises(WireError, match=reason):
        encode(message)


@pytest.mark.parametrize("body", [
    b"", b"\x05\x00\x00\x00{", b"\xff\xff\xff\xff",
    encode({"x": np.zeros(100)})[HEADER.size:-8],  # the message ends inside its array
    pickle.dumps(("ok", 1)),
])
def test_bytes_that_are_not_a_message_raise_wire_error(body):
    with pytest.raises(WireError, match="not a message"):
        decode(body)


def test_an_array_description_cannot_ask_for_objects_or_negative_shapes():
    for header in (b'{"~array":["|O8",[1]]}', b'{"~array":["<f8",[-1]]}'):
        body = len(header).to_bytes(4, "little") + header + bytes(8)
        with pytest.raises(WireError):
            decode(body)


@pytest.mark.parametrize("message", [
    None, "fit", {"lr": 0.1, "seed": 2**63 - 1}, [math.inf, math.nan],
    ("fit", np.arange(6.0).reshape(2, 3), {"extras": [np.zeros(0), np.array([1, 2], dtype=np.int8)]}),
    np.asfortranarray(np.arange(12.0).reshape(3, 4)),
])
def test_encoded_size_is_the_length_of_the_frame(message):
    assert encoded_size(message) == len(encode(message))


def test_encoded_size_refuses_what_encode_refuses():
    with pytest.raises(WireError, match="cannot send"):
        encoded_size({"f": print})

