"""Privacy and security (chapter 08): what a gradient leaks, differential privacy's
accountant, and the pieces of secure aggregation.

- :mod:`~.leakage` exact input and label recovery from one sample's gradient, and what batches
  and local steps do to it; :mod:`~.dlg` the optimisation attack (DLG) for batches;
- :mod:`~.accountant` the RDP of the Poisson-subsampled Gaussian (Mironov et al. 2019), its
  (epsilon, delta) conversion and the noise needed for a target epsilon; :mod:`~.local_dp` each
  client noising its own change, the contrast to central DP;
- :mod:`~.shamir` t-of-n secret sharing over GF(2^127 - 1);
- :mod:`~.fixed_point` clipping and fixed-point encoding into Z_{2^32}, where masks cancel;
- :mod:`~.secagg` key agreement (X25519, HKDF), AES-CTR masks and encrypted shares;
- :mod:`~.secagg_protocol` secure aggregation's four stages (Bonawitz et al. 2017), with
  dropout recovery, and SecAgg+'s sparse graph (Bell et al. 2020); the server loop runs them in
  :class:`flcourse.federated.SecAggFedAvg`.
"""
from .accountant import (DEFAULT_ORDERS, epsilon, noise_multiplier_for_epsilon, rdp_subsampled_gaussian,
                         rdp_to_epsilon)
from .dlg import matched_reconstruction_error, reconstruct_from_gradient
from .fixed_point import clip_and_encode, decode_sum, max_summands, quantisation_step
from .leakage import (batch_leakage_error, first_layer_gradient, reconstruction_error,
                      recover_input_from_dense_gradient, recover_input_from_gradient,
                      recover_label_from_bias_gradient, recover_label_from_gradient, update_leakage_error)
from .local_dp import LocalDPClient, local_dp_epsilon, local_dp_noise_multiplier, mean_noise_std
from .secagg import SecAggCryptoError, agree, expand_mask, generate_keypair
from .secagg_protocol import SecAggParticipant, SecureAggregationAborted, harary_neighbourhoods, unmask_sum
from .shamir import PRIME, lagrange_at_zero, reconstruct_bytes, reconstruct_secret, split_bytes, split_secret

__all__ = ["DEFAULT_ORDERS", "LocalDPClient", "PRIME", "SecAggCryptoError", "SecAggParticipant",
           "SecureAggregationAborted", "agree", "batch_leakage_error", "clip_and_encode", "decode_sum", "epsilon",
           "expand_mask", "first_layer_gradient", "generate_keypair", "harary_neighbourhoods", "lagrange_at_zero",
           "local_dp_epsilon", "local_dp_noise_multiplier", "matched_reconstruction_error", "max_summands",
           "mean_noise_std", "noise_multiplier_for_epsilon", "quantisation_step", "rdp_subsampled_gaussian",
           "rdp_to_epsilon", "reconstruct_bytes", "reconstruct_from_gradient", "reconstruct_secret",
           "reconstruction_error", "recover_input_from_dense_gradient", "recover_input_from_gradient",
           "recover_label_from_bias_gradient", "recover_label_from_gradient", "split_bytes", "split_secret",
           "unmask_sum", "update_leakage_error"]
