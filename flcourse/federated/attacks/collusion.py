"""Colluding attackers who see the honest updates: ALIE and IPM, as a wrapper around a strategy.

ALIE (Baruch et al. 2019) and IPM (Xie, Koyejo, Gupta 2019) craft one vector from the
honest updates of the round: μ - zσ per coordinate, or -ε times their mean. A client cannot
compute that: it sees only its own data. The adversary of these papers is omniscient, and
the one place in a simulation where all the round's updates meet is the server's
``aggregate_fit``. So :class:`Colluding` wraps a strategy: its ``aggregate_fit`` replaces the
attackers' updates (those of the clients ``attackers``, which trained honestly) by the
crafted one, then hands the round to the strategy it wraps, which sees what a real server
would receive. It is an attack, not a strategy: it lives here, not in
:mod:`flcourse.federated.strategies`, so the command line and the contract tests do not offer
it as one.

Everything else is the inner strategy's: configuration, state, checks and required extras;
its identity is its constructor parameters, the inner strategy included, so a checkpoint of
an attacked run resumes only that attacked run, bit for bit. See notebook 07.
"""
from __future__ import annotations

import dataclasses
import numbers

import numpy as np

from ..._validation import Interval, Options, check_constraints
from ..server_checks import check_strategy
from ..strategies.base import Strategy
from .formulas import alie, alie_z, ipm

ATTACKS = ("alie", "ipm")
KNOWLEDGE = ("honest", "attackers", "all")


class Colluding(Strategy):
    """Replace the attackers' updates by ALIE's or IPM's, crafted from what they see.

    With the round's updates as changes Δ_k (parameters are converted: Δ_k = w_k - w_t), the
    m attackers among the n clients that answered all send

        ALIE:  μ - z σ      (per coordinate; z = ``z`` or alie_z(n, m))
        IPM:   -ε μ

    where μ and σ are the mean and the (population) standard deviation over the updates the
    attackers see: the honest ones (``knowledge="honest"``, the papers' omniscient attacker),
    their own honest updates (``"attackers"``, ALIE's weaker attacker, who estimates μ and σ
    from its own data) or all of them (``"all"``). A round in which no attacker answered, or
    no update they would see, is passed on unchanged.

    Parameters
    ----------
    strategy : Strategy
        The strategy under attack (FedAvg, a robust one, ...). It may not define ``run_round``.
    attackers : list of int
        The ids of the colluding clients.
    attack : {"alie", "ipm"}, default="alie"
    z : float or None, default=None
        ALIE's z; None: :func:`~flcourse.federated.attacks.alie_z` of the round's n and m.
    epsilon : float >= 0, default=0.1
        IPM's ε.
    knowledge : {"honest", "attackers", "all"}, default="honest"

    The metrics of a round add "attackers_replaced" (their ids) and, for ALIE, "alie_z".
    With z = None, a round in which the attackers are a majority of the answers fails
    (:func:`~flcourse.federated.attacks.alie_z` has no z for it).
    """

    parameter_constraints = {"attack": Options(ATTACKS), "z": Interval(float, None, None, none_ok=True),
                             "epsilon": Interval(float, 0, None, closed="left"),
                             "knowledge": Options(KNOWLEDGE)}

    def __init__(self, strategy, *, attackers, attack: str = "alie", z: float | None = None,
                 epsilon: float = 0.1, knowledge: str = "honest"):
        self.strategy, self.attackers, self.attack = strategy, attackers, attack
        self.z, self.epsilon, self.knowledge = z, epsilon, knowledge

    @property
    def required_extras(self) -> tuple:
        return tuple(getattr(self.strategy, "required_extras", ()))

    def validate(self) -> None:
        """Check the inner strategy's life cycle and parameters, then this wrapper's."""
        check_strategy(self.strategy, "Colluding")
        if callable(getattr(self.strategy, "run_round", None)):
            raise TypeError(f"The 'strategy' parameter of Colluding must aggregate in one stage "
                            f"(configure_fit, aggregate_fit). Got {type(self.strategy).__name__}, "
                            f"which defines run_round, instead.")
        check_attackers(self.attackers, "Colluding")
        check_constraints(self, self.parameter_constraints)

    def initialize(self, params) -> None:
        self.strategy.initialize(params)

    def get_state(self) -> dict:
        return self.strategy.get_state()

    def set_state(self, state: dict) -> None:
        self.strategy.set_state(state)

    def configure_fit(self, server_round, params, cids, rng) -> dict:
        """The inner strategy's instructions; notes which clients answer with a change."""
        instructions = self.strategy.configure_fit(server_round, params, cids, rng)
        self.as_delta_ = {cid: config.get("update") == "delta" for cid, config in instructions.items()}
        return instructions

    def aggregate_fit(self, server_round, params, results, failures):
        """The inner strategy's aggregate of the results, the attackers' replaced."""
        crafted, z = self.crafted_results(params, results)
        new_params, metrics = self.strategy.aggregate_fit(server_round, params, crafted, failures)
        replaced = [u.cid for u, v in zip(results, crafted) if u is not v]
        return new_params, {**metrics, "attackers_replaced": replaced, **({} if z is None else {"alie_z": z})}

    def crafted_results(self, params, results) -> tuple[list, float | None]:
        """``(results with the attackers' updates replaced, the z used or None)``."""
        attackers = set(self.attackers)
        if not hasattr(self, "as_delta_"):
            raise RuntimeError("Colluding.aggregate_fit needs the round's configure_fit first: it says "
                               "which clients answer with their change and which with parameters.")
        as_delta = self.as_delta_
        deltas = {u.cid: u.params if as_delta.get(u.cid) else u.params - params for u in results}
        seen = [deltas[u.cid] for u in results if self.sees(u.cid in attackers)]
        n_attackers = sum(u.cid in attackers for u in results)
        if not n_attackers or not seen:
            return list(results), None
        z = None
        if self.attack == "alie":
            z = alie_z(len(results), n_attackers) if self.z is None else float(self.z)
            vector = alie(np.stack(seen), z)
        else:
            vector = ipm(np.stack(seen), self.epsilon)
        return [dataclasses.replace(u, params=vector.copy() if as_delta.get(u.cid) else params + vector)
                if u.cid in attackers else u for u in results], z

    def sees(self, is_attacker: bool) -> bool:
        """Whether an update enters μ and σ under ``knowledge``."""
        return self.knowledge == "all" or (self.knowledge == "attackers") == is_attacker

    def __repr__(self) -> str:
        return (f"Colluding({self.strategy!r}, attackers={list(self.attackers)!r}, attack={self.attack!r}, "
                f"z={self.z!r}, epsilon={self.epsilon!r}, knowledge={self.knowledge!r})")


def check_attackers(attackers, owner: str) -> list:
    """``attackers`` if it is a non-empty list (or tuple) of distinct non-negative int ids."""
    valid = isinstance(attackers, (list, tuple)) and len(attackers) > 0 and all(
        isinstance(c, numbers.Integral) and not isinstance(c, bool) and c >= 0 for c in attackers)
    if not valid or len(set(attackers)) != len(attackers):
        raise ValueError(f"The 'attackers' parameter of {owner} must be a non-empty list of distinct "
                         f"non-negative int client ids. Got {attackers!r} instead.")
    return list(attackers)
