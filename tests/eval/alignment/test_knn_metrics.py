"""Neighbour lists and the four list metrics, on examples worked out by hand."""

import math

import pytest
import torch

from nexus_o.eval.alignment import MetricOptions, score_all
from nexus_o.eval.alignment.knn import linear_kernel, nearest_neighbours, neighbour_match
from nexus_o.eval.alignment.metrics import cycle_knn, edit_distance_knn, lcs_knn, mutual_knn


def _unit_vectors(degrees):
    angles = torch.tensor([math.radians(d) for d in degrees], dtype=torch.float64)
    return torch.stack([angles.cos(), angles.sin()], dim=1)


# Unit vectors: inner product = cos(angle difference), so neighbours are the nearest angles.
ANGLES_A = [0, 10, 35, 75, 130]
ANGLES_B = [0, 50, 20, 140, 105]
# Full orders by angular distance, worked out by hand (e.g. from 75: 35 at 40, 130 at 55, 10 at 65, 0 at 75).
ORDER_A = [[1, 2, 3, 4], [0, 2, 3, 4], [1, 0, 3, 4], [2, 4, 1, 0], [3, 2, 1, 0]]
KNN2_B = [[2, 1], [2, 0], [0, 1], [4, 1], [3, 1]]


def test_nearest_neighbours_exclude_self_most_similar_first():
    kernel = linear_kernel(_unit_vectors(ANGLES_A))
    assert nearest_neighbours(kernel, 4).tolist() == ORDER_A
    assert nearest_neighbours(kernel, 2).tolist() == [row[:2] for row in ORDER_A]
    assert nearest_neighbours(linear_kernel(_unit_vectors(ANGLES_B)), 2).tolist() == KNN2_B


def test_nearest_neighbours_exclude_self_even_when_it_is_not_the_most_similar():
    feats = torch.tensor([[1.0], [3.0], [2.0], [-1.0]])  # unnormalised: sample 0 prefers 1 and 2 to itself
    assert nearest_neighbours(linear_kernel(feats), 2).tolist() == [[1, 2], [2, 0], [1, 0], [0, 2]]


def test_list_metrics_on_the_angle_example():
    # A's 2-lists [1,2] [0,2] [1,0] [2,4] [3,2] against B's [2,1] [2,0] [0,1] [4,1] [3,1]:
    # shared 2,2,2,1,1 of 2 -> mutual 0.8; every LCS is 1; Levenshtein 2,2,2,2,1 -> 1 - 1.8 / 2;
    # every sample closes a cycle both ways.
    scores = score_all(_unit_vectors(ANGLES_A), _unit_vectors(ANGLES_B), topk=2, options=MetricOptions(cca_dim=2))
    assert scores["mutual_knn"] == pytest.approx(0.8)
    assert scores["lcs_knn"] == pytest.approx(1.0)
    assert scores["edit_distance_knn"] == pytest.approx(0.1)
    assert scores["cycle_knn"] == pytest.approx(1.0)


def test_lcs_and_edit_distance_on_hand_pairs():
    knn_a = torch.tensor([[1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, 3]])
    knn_b = torch.tensor([[1, 2, 3], [3, 2, 1], [2, 3, 4], [4, 5, 6]])
    match = neighbour_match(knn_a, knn_b)
    # LCS 3, 1, 2, 0; Levenshtein 0, 2 (two substitutions), 2 (delete 1, insert 4), 3
    assert lcs_knn(match).item() == pytest.approx(6 / 4)
    assert edit_distance_knn(match).item() == pytest.approx(1 - 7 / 12)
    # overlaps 3, 3, 2, 0 of 3
    assert mutual_knn(match).item() == pytest.approx(8 / 12)


def test_lcs_is_not_divided_by_k():
    lists = torch.tensor([[1, 2, 3, 4], [0, 2, 3, 4]])
    assert lcs_knn(neighbour_match(lists, lists)).item() == 4.0


def test_cycle_knn_is_asymmetric_on_a_star():
    # The only cycles pass through sample 0: its B-neighbours 1 and 2 both list 0 among their
    # A-neighbours. Out through B: only sample 0 returns (1/5). Out through A: 1 and 2 return (2/5).
    knn_a = torch.tensor([[3, 4], [0, 3], [0, 4], [1, 2], [1, 2]])
    knn_b = torch.tensor([[1, 2], [0, 2], [0, 1], [2, 4], [1, 3]])
    assert cycle_knn(knn_a, knn_b).item() == pytest.approx(0.2)
    assert cycle_knn(knn_b, knn_a).item() == pytest.approx(0.4)


def _brute_force_cycle(knn_a, knn_b):
    hits = [any(i in knn_a[j] for j in knn_b[i]) for i in range(len(knn_a))]
    return sum(hits) / len(hits)


def test_list_metrics_batched_over_layers_match_brute_force():
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(3, 30, 8, generator=gen, dtype=torch.float64)
    knn = nearest_neighbours(linear_kernel(feats), 5)
    for layer in range(3):
        for other in range(3):
            got = cycle_knn(knn[layer], knn[other]).item()
            assert got == pytest.approx(_brute_force_cycle(knn[layer].tolist(), knn[other].tolist()))
    batched = mutual_knn(neighbour_match(knn, knn[0]))
    looped = [mutual_knn(neighbour_match(knn[i], knn[0])).item() for i in range(3)]
    assert batched.tolist() == pytest.approx(looped)
    assert batched[0].item() == 1.0
