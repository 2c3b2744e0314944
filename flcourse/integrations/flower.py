"""Our clients under Flower (``flwr``): the adapter a practitioner needs to move a client over.

Flower's ``NumPyClient`` passes the parameters as a list of arrays and accepts only scalars
in its config and metrics; ours take one flat vector and may return extra arrays. The adapter
translates, and nothing else: the client's numbers are unchanged (``tests/test_flower.py``
checks it, where flwr is installed; ``benchmarks/simulation_speed.py`` runs it on Flower's
simulation engine). Extras travel as further arrays after the parameters, named in the metric
``"extras"``. A config that holds arrays (SCAFFOLD's control variate) cannot travel in
Flower's config: it is refused with a clear error. See notebook 11.

    from flcourse.integrations.flower import to_flower
    client_fn = lambda context: to_flower(clients[int(context.node_config["partition-id"])]).to_client()
"""
from __future__ import annotations

import numpy as np


def to_flower(client):
    """Return a ``flwr.client.NumPyClient`` that runs ``client`` (fit and evaluate)."""
    from flwr.client import NumPyClient

    class FlowerClient(NumPyClient):
        def __init__(self, inner):
            self.inner = inner

        def get_parameters(self, config):
            raise NotImplementedError("the server supplies the initial parameters")

        def fit(self, parameters, config):
            return flower_fit(self.inner, parameters, config)

        def evaluate(self, parameters, config):
            return self.inner.evaluate(flat_params(parameters), dict(config))

    return FlowerClient(client)


def flat_params(parameters) -> np.ndarray:
    """Flower's list of arrays (one, here) as our flat float64 vector."""
    if len(parameters) != 1:
        raise ValueError(f"The 'parameters' of a flcourse client under Flower must be one flat array. "
                         f"Got {len(parameters)} arrays instead.")
    return np.asarray(parameters[0], dtype=np.float64)


def flower_fit(client, parameters, config):
    """``client.fit`` in Flower's shape: (list of arrays, n_examples, scalar metrics)."""
    config = dict(config)
    arrays = sorted(key for key, value in config.items() if isinstance(value, np.ndarray))
    if arrays:
        raise TypeError(f"The config of a flcourse client under Flower must hold scalars only. "
                        f"Got arrays for {', '.join(map(repr, arrays))} instead.")
    reply = client.fit(flat_params(parameters), config)
    params, n_examples, metrics = reply[0], reply[1], dict(reply[2])
    extras = getattr(reply, "extras", {})
    if extras:
        metrics["extras"] = ",".join(sorted(extras))
    return [params, *(extras[name] for name in sorted(extras))], int(n_examples), metrics
