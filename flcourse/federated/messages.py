"""What travels between the server and its clients, checked before any arithmetic touches it.

The server sends each selected client ``(params, config)``: the global parameters and its own
instructions (a dict of numbers and strings, and of arrays where an algorithm needs them,
such as SCAFFOLD's server control variate). A client answers ``fit`` with a :class:`FitRes`:

    FitRes(params, n_examples, metrics, extras={})

It unpacks as Flower's ``NumPyClient.fit`` triple ``(params, n_examples, metrics)``, so a
plain client may return that triple; ``extras`` holds named arrays an algorithm needs beyond
the update (SCAFFOLD's Δc). ``params`` is the new parameters, or their change from what was
sent when the config says ``"update": "delta"``. :func:`check_fit_res` turns a reply into an
:class:`Update` or raises :class:`InvalidUpdateError`; no reply can crash the server or take
over the average. :func:`message_bytes` is the size of a message on the wire, so the bytes a
round records are those a real deployment would send. See notebook 05.
"""
from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np
import numpy.typing as npt

from ..runtime import encoded_size

DEFAULT_MAX_EXAMPLES = 10**9  # the bound on n_examples for a client that declares no size
MAX_EXTRAS = 16  # named arrays one update may carry


class InvalidUpdateError(ValueError):
    """A client's reply cannot be used; the message names the client and the problem."""


class FitRes(tuple):
    """A client's answer to ``fit``: ``(params, n_examples, metrics)``, plus ``extras``.

    Parameters
    ----------
    params : ndarray of shape (n_params,)
        The new parameters, or their change (``config["update"] == "delta"``).
    n_examples : int
        How many examples the local work used: the weight of this update.
    metrics : dict, optional
    extras : dict of str to ndarray, optional
        Named arrays the strategy asked for, e.g. ``{"control_delta": ...}`` for SCAFFOLD.
    """

    def __new__(cls, params, n_examples, metrics=None, extras=None):
        self = super().__new__(cls, (params, n_examples, {} if metrics is None else metrics))
        self.extras = {} if extras is None else extras
        return self

    params = property(lambda self: self[0])
    n_examples = property(lambda self: self[1])
    metrics = property(lambda self: self[2])

    def to_wire(self) -> list:
        """The reply as it travels: ``[params, n_examples, metrics, extras]``."""
        return [self[0], self[1], self[2], self.extras]

    def __repr__(self) -> str:
        shape = getattr(self[0], "shape", "?")
        return f"FitRes(params of shape {shape}, n_examples={self[1]!r}, extras={sorted(self.extras)})"


def as_wire_reply(reply):
    """What a client process sends back for ``reply``: a FitRes keeps its extras."""
    return reply.to_wire() if isinstance(reply, FitRes) else reply


@dataclasses.dataclass(frozen=True)
class Update:
    """A checked fit result, as strategies receive it (``aggregate_fit``'s ``results``)."""

    cid: int
    params: np.ndarray
    n_examples: int
    metrics: dict
    extras: dict


def reply_fields(reply) -> tuple:
    """``(update, n_examples, metrics, extras)`` of a FitRes or a (params, n, metrics) triple."""
    if isinstance(reply, FitRes):
        return reply[0], reply[1], reply[2], reply.extras
    if isinstance(reply, (tuple, list)) and len(reply) in (3, 4):
        return (*reply, {}) if len(reply) == 3 else tuple(reply)
    raise TypeError(f"The wrapped client's fit must return a FitRes or (params, n_examples, metrics). "
                    f"Got {type(reply).__name__} instead.")


def message_bytes(message) -> int:
    """How many bytes ``message`` takes on the wire (frame prefix included): exactly what
    :func:`flcourse.runtime.encode` would send, computed without copying the arrays."""
    return encoded_size(message)


def array_bytes(message) -> int:
    """The bytes of the arrays in ``message``: the payload, without the wire's framing."""
    if isinstance(message, np.ndarray):
        return message.nbytes
    if isinstance(message, (list, tuple)):
        return sum(array_bytes(item) for item in message)
    if isinstance(message, dict):
        return sum(array_bytes(item) for item in message.values())
    return 0


def check_fit_res(cid: int, reply, n_params: int, *, max_examples: int = DEFAULT_MAX_EXAMPLES,
                  param_bound: float = math.inf) -> Update:
    """Return an :class:`Update` from a client's ``fit`` reply, or raise InvalidUpdateError.

    A reply is a :class:`FitRes`, a triple ``(params, n_examples, metrics)`` or, as it arrives
    from a process, a list ``[params, n_examples, metrics, extras]``. ``params`` and every
    extra must be a plain float ndarray (no subclass: its arithmetic could run anything),
    finite and at most ``param_bound`` in absolute value; ``params`` has shape (n_params,).
    ``n_examples`` is an int in [1, max_examples] (the client's declared size), so no client
    can take over the average by claiming more data than it holds. The arrays are copied, so
    the client cannot change them afterwards.
    """
    params, n_examples, metrics, extras = _fields(cid, reply)
    params = _checked_array(cid, "parameters", params, param_bound, (n_params,))
    if isinstance(n_examples, bool) or not isinstance(n_examples, numbers.Integral) \
            or not 1 <= n_examples <= max_examples:
        raise InvalidUpdateError(f"update from client {cid} must report n_examples as an int in "
                                 f"[1, {max_examples}]; got {short_repr(n_examples)}")
    if not isinstance(metrics, dict):
        raise InvalidUpdateError(f"update from client {cid} must report metrics as a dict; "
                                 f"got {type(metrics).__name__}")
    extras = {name: _checked_array(cid, f"extra {name!r}", array, param_bound, None)
              for name, array in _extras(cid, extras).items()}
    return Update(int(cid), params, int(n_examples), dict(metrics), extras)


def _fields(cid, reply):
    if isinstance(reply, FitRes):
        return reply[0], reply[1], reply[2], reply.extras
    if isinstance(reply, (tuple, list)) and len(reply) in (3, 4):
        return (*reply, {}) if len(reply) == 3 else tuple(reply)
    raise InvalidUpdateError(f"update from client {cid} must be a tuple (params, n_examples, "
                             f"metrics); got {type(reply).__name__}")


def _extras(cid, extras) -> dict:
    if not isinstance(extras, dict) or not all(isinstance(name, str) for name in extras):
        raise InvalidUpdateError(f"update from client {cid} must carry its extras as a dict of "
                                 f"named arrays; got {type(extras).__name__}")
    if len(extras) > MAX_EXTRAS:
        raise InvalidUpdateError(f"update from client {cid} carries {len(extras)} extra arrays, "
                                 f"more than {MAX_EXTRAS}")
    return extras


def _checked_array(cid, what: str, array, bound: float, shape) -> np.ndarray:
    """``array`` as a new float64 array, if it is a plain finite float ndarray within ``bound``."""
    if type(array) is not np.ndarray or array.dtype.kind != "f":
        kind = type(array).__name__ + (f" of dtype {array.dtype}" if isinstance(array, np.ndarray) else "")
        raise InvalidUpdateError(f"update from client {cid} must hold a plain float ndarray of "
                                 f"{what}; got {kind}")
    if shape is not None and array.shape != shape:
        raise InvalidUpdateError(f"update from client {cid} has shape {array.shape}, expected ({shape[0]},)")
    array = np.array(array, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        kind = "NaN" if np.isnan(array).any() else "Inf"
        raise InvalidUpdateError(f"update from client {cid} holds {kind} in "
                                 f"{int((~np.isfinite(array)).sum())} of {array.size} {what}")
    if np.abs(array).max(initial=0.0) > bound:
        raise InvalidUpdateError(f"update from client {cid} holds {what} of magnitude "
                                 f"{np.abs(array).max():.3g}, over param_bound={bound:g}")
    return array


def check_update(cid: int, result, n_params: int, *, max_examples: int = DEFAULT_MAX_EXAMPLES,
                 param_bound: float = math.inf) -> tuple[npt.NDArray[np.float64], int]:
    """``(params, n_examples)`` of a checked fit reply: :func:`check_fit_res` without the rest,
    the form chapter 05 builds its own aggregation on."""
    update = check_fit_res(cid, result, n_params, max_examples=max_examples, param_bound=param_bound)
    return update.params, update.n_examples


def check_evaluate_res(cid: int, reply, max_examples: int) -> tuple[float, int, float | None]:
    """``(loss, n_examples, accuracy or None)`` from a client's ``evaluate`` reply, or raise."""
    if not isinstance(reply, (tuple, list)) or len(reply) != 3:
        raise InvalidUpdateError(f"evaluation from client {cid} must be a tuple (loss, n_examples, metrics)")
    loss, n_examples, metrics = reply
    if isinstance(loss, bool) or not isinstance(loss, numbers.Real) or not math.isfinite(loss):
        raise InvalidUpdateError(f"evaluation from client {cid} must report a finite loss; got {short_repr(loss)}")
    if isinstance(n_examples, bool) or not isinstance(n_examples, numbers.Integral) \
            or not 1 <= n_examples <= max_examples:
        raise InvalidUpdateError(f"evaluation from client {cid} must report n_examples as an int in "
                                 f"[1, {max_examples}]")
    accuracy = metrics.get("accuracy") if isinstance(metrics, dict) else None
    accuracy = float(accuracy) if isinstance(accuracy, numbers.Real) and 0 <= accuracy <= 1 else None
    return float(loss), int(n_examples), accuracy


def short_repr(value) -> str:
    """``repr(value)``, shortened: a client's 10**300 need not fill the log."""
    if isinstance(value, numbers.Integral) and abs(value) >= 10**12:
        return f"an int of magnitude 2**{int(value).bit_length() - 1} or more"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
