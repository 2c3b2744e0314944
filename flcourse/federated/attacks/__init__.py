"""Attacks on federated learning: what malicious clients send, and how to simulate them.

- :mod:`~.formulas` the attacks as pure array functions over updates (deltas): sign flip,
  Gaussian noise, scaling, ALIE (with its z), IPM, label flipping;
- :mod:`~.clients` clients that falsify an honest client's update (wrappers) or train on
  flipped labels;
- :mod:`~.backdoor` a pixel trigger, backdoored clients and the backdoor's success rate;
- :mod:`~.collusion` :class:`Colluding`, the omniscient adversary of ALIE and IPM, as a
  wrapper around the strategy under attack.

See notebook 07.
"""
from .backdoor import BackdoorClient, add_trigger, backdoor_success_rate, poison_backdoor
from .clients import GaussianNoiseClient, LabelFlipClient, PoisonedClient, ScalingClient, SignFlipClient
from .collusion import Colluding
from .formulas import alie, alie_z, flip_labels, gaussian_noise, ipm, scale_update, sign_flip

__all__ = ["BackdoorClient", "Colluding", "GaussianNoiseClient", "LabelFlipClient", "PoisonedClient",
           "ScalingClient", "SignFlipClient", "add_trigger", "alie", "alie_z", "backdoor_success_rate",
           "flip_labels", "gaussian_noise", "ipm", "poison_backdoor", "scale_update", "sign_flip"]
