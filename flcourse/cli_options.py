"""The command line's strategy options: one per constructor parameter of any strategy.

Every strategy of :mod:`flcourse.federated.strategies` is a ``--strategy`` and each of its
number or string constructor parameters an option (``--mu``, ``--server-lr``, ...), so a new
strategy needs no change to the command line. See :mod:`flcourse.cli`.
"""
from __future__ import annotations

import math

CLI_DEFAULTS = {"fraction_fit": 0.1, "local_epochs": 5, "batch_size": 10}  # as `fedavg` has always had
OPTION_NAMES = {"fraction_fit": "--fraction"}  # a constructor parameter's option, where not --dashed-name


def batch_size(text: str):
    """An int >= 1, or "inf" / "full" for full-batch local steps."""
    if text.lower() in ("inf", "full"):
        return math.inf
    return int(text)


def strategy_classes() -> dict:
    """{name: class} of every strategy the package offers."""
    from flcourse.federated.strategies import available_strategies

    return available_strategies()


def constructor_parameters(cls) -> dict:
    """{name: default} of ``cls``'s keyword constructor parameters that a command line can set
    (numbers and strings; not those it lists in ``cli_exclude``, such as a systems model)."""
    import inspect

    excluded = set(getattr(cls, "cli_exclude", ()))
    return {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and p.kind is p.KEYWORD_ONLY and name not in excluded}


def add_strategy_options(parser) -> None:
    """One option per constructor parameter of any strategy (``--mu``, ``--server-lr``, ...)."""
    takers, defaults = {}, {}
    for name, cls in strategy_classes().items():
        for param, default in constructor_parameters(cls).items():
            takers.setdefault(param, []).append(name)
            defaults.setdefault(param, {})[name] = CLI_DEFAULTS.get(param, default)
    for param, names in takers.items():
        values = defaults[param]
        default = next((value for value in values.values() if value is not None), None)
        kind = batch_size if param == "batch_size" else type(default) if default is not None else float
        shown = repr(default) if len(set(map(repr, values.values()))) == 1 else \
            ", ".join(f"{value!r} for {name}" for name, value in values.items())
        parser.add_argument(OPTION_NAMES.get(param, "--" + param.replace("_", "-")), dest=param, type=kind,
                            default=None, help=f"{param} of {', '.join(names)} (default {shown})")


def make_strategy(args):
    """The strategy ``args`` ask for, with their parameters; ValueError for one it does not take."""
    if args.command == "fedavg":
        from flcourse.federated import FedAvg

        return FedAvg(fraction_fit=args.fraction_fit, local_epochs=args.local_epochs,
                      batch_size=args.batch_size, lr=args.lr)
    cls = strategy_classes()[args.strategy]
    accepted = constructor_parameters(cls)
    every = {param for other in strategy_classes().values() for param in constructor_parameters(other)}
    given = {param: getattr(args, param) for param in every if getattr(args, param, None) is not None}
    extra = sorted(set(given) - set(accepted))
    if extra:
        flag = OPTION_NAMES.get(extra[0], "--" + extra[0].replace("_", "-"))
        raise ValueError(f"The option {flag} is not a parameter of {cls.__name__}. "
                         f"It takes {', '.join(sorted(accepted))}.")
    kwargs = {param: value for param, value in CLI_DEFAULTS.items() if param in accepted}
    return cls(**{**kwargs, **given})
