"""Robust aggregation: pure functions from a stack of client updates to one aggregate.

Each defence takes ``updates``, an array of shape (n, d), one client update (a change of the
parameters) per row, and returns an array of shape (d,). A row with any non-finite value is
Byzantine by definition: it is removed first, and for the defences given an attacker budget
``n_byzantine`` it uses that budget up (:mod:`~.common`). Which defence a server uses, and on
what, is a strategy's business (:mod:`flcourse.federated.strategies.robust`). See notebook 07.

- :mod:`~.coordinate`: ``mean``, ``median``, ``trimmed_mean`` (Yin et al. 2018);
- :mod:`~.krum`: ``krum_scores``, ``krum``, ``multi_krum`` (Blanchard et al. 2017);
- :mod:`~.bulyan`: ``bulyan`` (El Mhamdi et al. 2018);
- :mod:`~.geometric`: ``geometric_median`` (RFA, Pillutla et al. 2022);
- :mod:`~.clipping`: ``clip_to_norm``, ``norm_bounding`` (Sun et al. 2019),
  ``centered_clipping`` (Karimireddy et al. 2021);
- :mod:`~.bucketing`: ``bucket_means``, ``bucketing`` (Karimireddy et al. 2022).

``DEFENCES`` maps each aggregator's name to its function (their other parameters differ).
"""
from .bucketing import bucket_means, bucketing
from .bulyan import bulyan
from .clipping import centered_clipping, clip_to_norm, norm_bounding
from .common import finite_rows
from .coordinate import mean, median, trimmed_mean
from .geometric import geometric_median
from .krum import krum, krum_scores, multi_krum, pairwise_sq_distances

DEFENCES = {"mean": mean, "median": median, "trimmed_mean": trimmed_mean, "krum": krum,
            "multi_krum": multi_krum, "bulyan": bulyan, "geometric_median": geometric_median,
            "centered_clipping": centered_clipping, "norm_bounding": norm_bounding}

__all__ = ["DEFENCES", "bucket_means", "bucketing", "bulyan", "centered_clipping", "clip_to_norm",
           "finite_rows", "geometric_median", "krum", "krum_scores", "mean", "median", "multi_krum",
           "norm_bounding", "pairwise_sq_distances", "trimmed_mean"]
