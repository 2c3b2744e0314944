"""One round's exchanges with the clients: send, wait, check, count, apply the failure policy.

A round may hold several request/response stages (secure aggregation, chapter 08: keys, then
masked updates, then the shares of clients that dropped). Each stage is one call of
:meth:`RoundGrid.send`: a method name and each selected client's own arguments go out, the
replies come back by one deadline, each is checked by the stage's ``check`` function, and
every failure (an exception, a dead or hung process, a reply that fails its check) follows
the server's policy: the round fails with :class:`ClientFailure`, or the client is dropped
and recorded. The grid counts the bytes of every request and reply as they travel.
See notebooks 05 and 08.
"""
from __future__ import annotations

import math

import numpy as np

from ..runtime import WireError
from .messages import (InvalidUpdateError, array_bytes, as_wire_reply, check_evaluate_res, check_fit_res,
                       message_bytes)
from .runners import ClientFailure


def one_line(message: str) -> str:
    """A failure in one line: its first, and for a traceback its last (the exception) too."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        return f"{lines[0]} {lines[-1]}"
    return lines[0] if lines else message


class RoundGrid:
    """The exchanges of one round with the clients of ``runner``.

    Parameters
    ----------
    runner : InProcessClients or ProcessClients
    timeout : float
        Seconds each stage may take.
    on_invalid : {"fail", "drop"}
    limits : callable
        ``limits(cid)``: the most examples client ``cid`` may claim.
    n_params : int, optional
        The length of the parameter vector (for the fit stage).
    param_bound : float, default=inf
        The largest magnitude a parameter of an update may have.

    Attributes
    ----------
    bytes_sent, bytes_received : int
        The arrays' bytes (parameters and any other arrays) sent and received so far.
    wire_bytes_sent, wire_bytes_received : int
        The same messages' full size on the wire, framing included.
    dropped : list of [cid, reason]
    contacted : set of int
        The clients asked for something in a counted stage: the round's participants.
    """

    def __init__(self, runner, timeout: float, on_invalid: str, limits, *, n_params: int = 0,
                 param_bound: float = math.inf):
        self.runner, self.timeout, self.on_invalid, self.limits = runner, timeout, on_invalid, limits
        self.n_params, self.param_bound = n_params, param_bound
        self.bytes_sent = self.bytes_received = self.wire_bytes_sent = self.wire_bytes_received = 0
        self.dropped: list = []
        self.contacted: set = set()

    def send(self, method: str, requests: dict, check, *, count: bool = True) -> dict:
        """Send ``(method, *requests[cid])`` to each client; {cid: check(cid, reply)} of those
        whose reply passes ``check``; the others follow the policy (recorded in ``dropped``).
        With ``count=False`` (evaluation) the bytes are not added to the round's."""
        if count:
            self.contacted.update(requests)
            self._count_sent(method, requests)
        outcomes = self.runner.send(method, requests, self.timeout)
        results = {}
        for cid in sorted(outcomes):
            try:
                results[cid] = self._checked(cid, outcomes[cid], check, count)
            except Exception as error:  # noqa: BLE001 - whatever a client sent, it is its failure
                self.fail_or_drop(cid, error)
        return results

    def _checked(self, cid, outcome, check, count: bool):
        status, reply = outcome
        if status != "ok":
            raise ClientFailure(reply)
        result = check(cid, reply)  # first: its message says best what is wrong
        wire = as_wire_reply(reply)
        try:
            size = message_bytes(("ok", wire))
        except WireError as error:
            raise InvalidUpdateError(f"client {cid} sent a reply that cannot travel: {error}") from None
        if count:
            self.wire_bytes_received += size
            self.bytes_received += array_bytes(wire)
        return result

    def _count_sent(self, method: str, requests: dict) -> None:
        """Add the requests' sizes; a message that goes to many clients (one params, one config)
        is sized once."""
        sizes = {}
        for args in requests.values():
            key = tuple(map(id, args))  # the objects live through this call: ids stay unique
            if key not in sizes:
                message = (method, *args)
                sizes[key] = (array_bytes(message), message_bytes(message))
            self.bytes_sent += sizes[key][0]
            self.wire_bytes_sent += sizes[key][1]

    def fail_or_drop(self, cid, error) -> None:
        """Apply the policy to client ``cid``'s failure ``error``."""
        message = str(error) if isinstance(error, (ClientFailure, ValueError)) and str(error) \
            else f"client {cid}: checking its reply raised {type(error).__name__}: {error}"
        if self.on_invalid == "fail":
            raise ClientFailure(f"round failed: {message}") from None
        self.dropped.append([int(cid), one_line(message)])

    def fit(self, params, instructions: dict, required_extras=()):
        """The fit stage: ``instructions`` is {cid: config}; returns (checked updates in id
        order, [(cid, reason)] of those dropped). ``required_extras`` names the extra arrays,
        of the parameters' shape, every update must carry."""
        n_params = self.n_params

        def check(cid, reply):
            update = check_fit_res(cid, reply, n_params, max_examples=self.limits(cid),
                                   param_bound=self.param_bound)
            for name in required_extras:
                if np.shape(update.extras.get(name)) != (n_params,):
                    raise InvalidUpdateError(f"update from client {cid} must carry the extra {name!r} "
                                             f"of shape ({n_params},)")
            return update

        before = len(self.dropped)
        results = self.send("fit", {cid: (params, config) for cid, config in instructions.items()}, check)
        return list(results.values()), [tuple(entry) for entry in self.dropped[before:]]

    def evaluate(self, params, cids, config=None) -> tuple[list, list]:
        """The evaluate stage: ([(loss, n_examples, accuracy)], [cid, reason] of those dropped)."""
        config = {} if config is None else config
        saved, self.dropped = self.dropped, []
        try:
            results = self.send("evaluate", {cid: (params, config) for cid in cids},
                                lambda cid, reply: check_evaluate_res(cid, reply, self.limits(cid)),
                                count=False)
            return list(results.values()), self.dropped
        finally:
            self.dropped = saved
