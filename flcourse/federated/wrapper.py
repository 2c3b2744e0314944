"""A client inside another: what every wrapper forwards to the client it wraps.

Attackers (:mod:`~flcourse.federated.attacks`), local differential privacy
(:class:`~flcourse.privacy.LocalDPClient`) and secure aggregation
(:class:`~flcourse.federated.SecAggClient`) each wrap an honest client: its id, its declared
size, its state (which the runner saves and restores, in checkpoints too) and its evaluation
stay the inner client's. See notebooks 07 and 08.
"""
from __future__ import annotations


class ClientWrapper:
    """Base of the client wrappers: forwards ``cid``, ``n_samples``, ``state`` and ``evaluate``.

    Parameters
    ----------
    client : client
        The wrapped client: any object with a ``fit`` method.
    """

    def __init__(self, client):
        if not callable(getattr(client, "fit", None)):
            raise TypeError(f"The 'client' parameter of {type(self).__name__} must be a client with a fit "
                            f"method. Got {type(client).__name__} instead.")
        self.client = client

    cid = property(lambda self: self.client.cid, doc="The inner client's id.")
    n_samples = property(lambda self: getattr(self.client, "n_samples", None), doc="The inner client's size.")

    @property
    def state(self):
        """The inner client's state (SCAFFOLD's c_i ...), which the runner saves and restores."""
        return self.client.state

    @state.setter
    def state(self, value):
        self.client.state = value

    def evaluate(self, params, config: dict):
        """The inner client's evaluation, on its own data."""
        return self.client.evaluate(params, config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.client!r})"
