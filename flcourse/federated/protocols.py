"""The contracts of the federated core, as ``Protocol`` s: what the server expects of a model,
a client, a strategy and a runner. Any object with these methods fits; the classes of the
package are one implementation each. See notebooks 05 and 06.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from .messages import Update

Params = npt.NDArray[np.float64]


@runtime_checkable
class ModelLike(Protocol):
    """A model over one flat float64 parameter vector, with unchecked kernels for training."""

    n_params: int

    def init_params(self, seed=None) -> Params: ...

    def loss_grad(self, params: Params, X: np.ndarray, y: np.ndarray,
                  need_grad: bool = True) -> tuple[float, Params | None]: ...

    def grad_stacked(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray: ...

    def score(self, params: Params, X: np.ndarray, y: np.ndarray) -> float: ...


@runtime_checkable
class Client(Protocol):
    """Flower's NumPyClient contract: ``fit`` returns (params, n_examples, metrics) or a FitRes."""

    def fit(self, params: Params, config: dict) -> tuple: ...

    def evaluate(self, params: Params, config: dict) -> tuple[float, int, dict]: ...


@runtime_checkable
class Strategy(Protocol):
    """A strategy's life cycle (:mod:`flcourse.federated.strategies.base`)."""

    def get_params(self) -> dict: ...

    def initialize(self, params: Params) -> None: ...

    def get_state(self) -> dict: ...

    def set_state(self, state: dict) -> None: ...

    def configure_fit(self, server_round: int, params: Params, cids: Sequence[int],
                      rng: np.random.Generator) -> dict: ...

    def aggregate_fit(self, server_round: int, params: Params, results: list[Update],
                      failures: list) -> tuple[Params, dict]: ...


@runtime_checkable
class Runner(Protocol):
    """Where clients run: :class:`InProcessClients`, :class:`ProcessClients`."""

    cids: Sequence[int]

    def send(self, method: str, requests: dict, timeout: float) -> dict: ...

    def size(self, cid: int) -> int | None: ...

    def fingerprint(self) -> dict: ...

    def get_states(self, cids) -> dict: ...

    def set_states(self, states: dict) -> None: ...

    def __enter__(self): ...

    def __exit__(self, *exc): ...
