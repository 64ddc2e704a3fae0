"""Representational alignment (paper section 4.2, Table 7, Figure 3).

The seven kernel-alignment metrics of the Platonic Representation Hypothesis reference code
(cycle_knn, mutual_knn, lcs_knn, cka, cknna, svcca, edit_distance_knn), computed in one shared
pass per feature pair or per stack of layers:

    from nexus_o.eval.alignment import score_all, score_layers
    scores = score_all(vision_feats, text_feats, topk=10)          # {name: float}
    per_layer = score_layers(hidden_states, text_feats, topk=10)   # [L, N, D] vs [N, D]
"""

from nexus_o.eval.alignment.inputs import AlignmentInputError, load_feature_file
from nexus_o.eval.alignment.options import METRIC_NAMES, MetricOptions
from nexus_o.eval.alignment.reference import reference_metric, reference_scores
from nexus_o.eval.alignment.report import score_files, scores_json, scores_table
from nexus_o.eval.alignment.score import score_all, score_layers

__all__ = [
    "METRIC_NAMES",
    "AlignmentInputError",
    "MetricOptions",
    "load_feature_file",
    "reference_metric",
    "reference_scores",
    "score_all",
    "score_files",
    "score_layers",
    "scores_json",
    "scores_table",
]
