"""What identifies a run, so that a checkpoint resumes only the run that wrote it.

A run is its model's and its strategy's class and constructor parameters (scikit-learn's
``get_params``: never ``repr``, which a subclass can copy), the model's number of parameters
and its clients (ids and sizes, by fingerprint). :func:`identity_difference` says in words
which part of two identities differs, with both values.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import math
import os

import numpy as np

MISSING = "(absent)"


def constructor_params(obj) -> dict:
    """The values of the parameters of ``type(obj).__init__``, as JSON-safe values.

    scikit-learn's ``get_params``: a parameter ``p`` is read back as ``obj.p``. Numbers, strings,
    bools and None stay as they are (numpy scalars become Python ones), non-finite floats become
    the strings "inf", "-inf" and "nan", sequences become lists, and an object (a strategy a
    wrapper wraps) becomes ``{"class": ..., "params": ...}``.

    Raises
    ------
    TypeError
        If a parameter is not stored as an attribute or has no JSON form (a Generator, an array).
    """
    owner = type(obj).__name__
    signature = inspect.signature(type(obj).__init__)
    names = [name for name, p in signature.parameters.items() if name != "self"
             and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    params = {}
    for name in names:
        if not hasattr(obj, name):
            raise TypeError(f"{owner} stores no attribute {name!r} for its constructor parameter "
                            f"{name!r}, so a checkpoint cannot identify it.")
        params[name] = _json_safe(getattr(obj, name), f"{owner}'s {name!r}")
    return params


def _json_safe(value, where: str):
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [_json_safe(item, where) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_safe(item, where) for key, item in value.items()}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if type(value).__module__.split(".")[0] not in ("builtins", "numpy"):
        return {"class": qualified_name(value), "params": constructor_params(value)}
    raise TypeError(f"The value of {where} is a {type(value).__name__}, which a checkpoint "
                    f"cannot identify (numbers, strings, bools, None, lists, dicts or objects only).")


def qualified_name(obj) -> str:
    """``module.QualName`` of ``obj``'s class: a subclass never passes for its parent."""
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def run_identity(model, strategy, clients) -> dict:
    """What must be equal for a checkpoint to continue a run.

    Parameters
    ----------
    model : Model
    strategy : Strategy (identified by its constructor parameters)
    clients : dict or list
        The federation's ``{"n_clients", "fingerprint"}`` (a runner's ``fingerprint()``), or
        a list of (cid, n_examples) pairs or (cid, n_examples, data_fingerprint) triples: the id
        the server calls each client by, how many examples it holds (None if the client does
        not say) and, optionally, a fingerprint of its data.

    Returns
    -------
    dict with "model", "n_params", "strategy" and "clients" (n_clients and a sha256
    fingerprint of the sorted entries)
    """
    if not isinstance(clients, dict):
        rows = sorted([int(cid), None if n is None else int(n), *data] for cid, n, *data in clients)
        clients = {"n_clients": len(rows), "fingerprint": hashlib.sha256(json.dumps(rows).encode()).hexdigest()}
    return {"model": {"class": qualified_name(model), "params": constructor_params(model)},
            "n_params": int(model.n_params),
            "strategy": {"class": qualified_name(strategy), "params": constructor_params(strategy)},
            "clients": dict(clients)}


def identity_difference(saved: dict, current: dict) -> str | None:
    """The first part of two identities that differs, in words, or None if they are equal."""
    for part in ("model", "strategy"):
        old, new = saved.get(part) or {}, current[part]
        if old.get("class") != new["class"]:
            return f"the {part} class is {old.get('class')} in the checkpoint and {new['class']} here"
        old_params, name = old.get("params") or {}, new["class"].rsplit(".", 1)[-1]
        for key in sorted(set(old_params) | set(new["params"])):
            a, b = old_params.get(key, MISSING), new["params"].get(key, MISSING)
            if a != b:
                return f"{part} {name}'s {key!r} is {_show(a)} in the checkpoint and {_show(b)} here"
        if part == "model" and saved.get("n_params") != current["n_params"]:
            return f"n_params is {saved.get('n_params')} in the checkpoint and {current['n_params']} here"
    old, new = saved.get("clients") or {}, current["clients"]
    if old.get("n_clients") != new["n_clients"]:
        return (f"the client set differs: {old.get('n_clients')} clients in the checkpoint, "
                f"{new['n_clients']} here")
    if old.get("fingerprint") != new["fingerprint"]:
        return (f"the client set differs: {new['n_clients']} clients in both, but other ids, "
                f"numbers of examples or data (fingerprint {str(old.get('fingerprint'))[:12]} in the "
                f"checkpoint, {str(new['fingerprint'])[:12]} here)")
    return None


def _show(value) -> str:
    return value if value in ("inf", "-inf", "nan", MISSING) else repr(value)

