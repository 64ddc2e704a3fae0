"""Residual vector quantisation of feature frames, with codebooks fitted by seeded k-means.

Stage ``k`` quantises what stages ``0 .. k-1`` left over, so each added codebook refines the
reconstruction. Fitting is plain k-means per stage (k-means++ seeding, Lloyd iterations) in
torch, deterministic for a given seed. No gradients, no learned encoder: the built-in codec's
codes are nearest-centroid ids of mel frames.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

# Rows per distance block: bounds the [rows, entries] distance matrix to a few tens of MB.
_BLOCK_ROWS = 16384


class ResidualVQ:
    """Fixed residual codebooks ``[K, C, D]``: ``K`` stages of ``C`` entries of width ``D``."""

    def __init__(self, codebooks: torch.Tensor) -> None:
        if codebooks.dim() != 3 or 0 in codebooks.shape:
            raise ValueError(f"codebooks must be a non-empty [K, C, D] tensor, got {tuple(codebooks.shape)}")
        self.codebooks = codebooks.float()

    @property
    def num_codebooks(self) -> int:
        return self.codebooks.shape[0]

    @property
    def codebook_size(self) -> int:
        return self.codebooks.shape[1]

    @property
    def dim(self) -> int:
        return self.codebooks.shape[2]

    def to(self, device: str | torch.device) -> ResidualVQ:
        self.codebooks = self.codebooks.to(device)
        return self

    def quantize(self, frames: torch.Tensor, num_stages: int | None = None) -> torch.Tensor:
        """``frames [N, D]`` -> codes ``[N, K]`` long (greedy, stage by stage)."""
        self._check_frames(frames)
        residual = frames.float().to(self.codebooks.device)
        codes = []
        for book in self.codebooks[: num_stages or self.num_codebooks]:
            ids = nearest(residual, book)
            residual = residual - book[ids]
            codes.append(ids)
        return torch.stack(codes, dim=1)

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[N, k]`` (the first ``k <= K`` stages) -> frames ``[N, D]``: sum of the chosen entries."""
        if codes.dim() != 2 or codes.shape[1] > self.num_codebooks:
            raise ValueError(f"codes must be [N, k<={self.num_codebooks}], got {tuple(codes.shape)}")
        codes = codes.to(self.codebooks.device)
        out = self.codebooks.new_zeros(codes.shape[0], self.dim)
        for stage in range(codes.shape[1]):
            out += self.codebooks[stage][codes[:, stage]]
        return out

    def stage_errors(self, frames: torch.Tensor) -> list[float]:
        """Mean squared reconstruction error after 1, 2, ..., K stages (for diagnostics and tests)."""
        codes = self.quantize(frames)
        frames = frames.float().to(self.codebooks.device)
        return [
            float((frames - self.dequantize(codes[:, : k + 1])).square().mean()) for k in range(self.num_codebooks)
        ]

    def _check_frames(self, frames: torch.Tensor) -> None:
        if frames.dim() != 2 or frames.shape[1] != self.dim:
            raise ValueError(f"frames must be [N, {self.dim}], got {tuple(frames.shape)}")


def nearest(points: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centroid (squared Euclidean) for each of ``points [N, D]`` -> ``[N]``."""
    return _nearest_with_distance(points, centroids)[0]


def _nearest_with_distance(points: torch.Tensor, centroids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    c_norm = centroids.square().sum(1)
    ids, dists = [], []
    for block in points.split(_BLOCK_ROWS):
        # |x - c|^2 = |x|^2 - 2 x.c + |c|^2; |x|^2 is constant per row so it only matters for the value.
        d = torch.addmm(c_norm[None], block, centroids.T, alpha=-2.0)
        best, idx = d.min(dim=1)
        ids.append(idx)
        dists.append((best + block.square().sum(1)).clamp_min(0.0))
    return torch.cat(ids), torch.cat(dists)


def kmeans_plus_plus(points: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: each new centre drawn with probability proportional to squared distance."""
    first = torch.randint(points.shape[0], (1,), generator=generator)
    centres = [points[first[0]]]
    closest = (points - centres[0]).square().sum(1)
    for _ in range(1, k):
        total = closest.sum()
        if total <= 0:  # every point already sits on a centre: duplicates are all that is left
            pick = torch.randint(points.shape[0], (1,), generator=generator)[0]
        else:
            pick = torch.multinomial(closest / total, 1, generator=generator)[0]
        centres.append(points[pick])
        closest = torch.minimum(closest, (points - points[pick]).square().sum(1))
    return torch.stack(centres)


def kmeans(points: torch.Tensor, k: int, iters: int, generator: torch.Generator) -> torch.Tensor:
    """Lloyd's k-means from a k-means++ start; empty clusters are re-seeded at the worst-fit points.

    ``points [N, D]`` -> centroids ``[k, D]``. Seeding uses at most ``64 k`` points (sampled with
    ``generator``) to keep it fast on large inputs; the Lloyd iterations use all of them.
    """
    n = points.shape[0]
    if n < k:
        raise ValueError(f"k-means needs at least {k} frames to fit {k} entries, got {n}")
    seed_pool = points
    if n > 64 * k:
        seed_pool = points[torch.randperm(n, generator=generator)[: 64 * k]]
    centroids = kmeans_plus_plus(seed_pool, k, generator)
    for _ in range(iters):
        ids, dists = _nearest_with_distance(points, centroids)
        sums = torch.zeros_like(centroids).index_add_(0, ids, points)
        counts = torch.bincount(ids, minlength=k).to(points.dtype)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
        empty = (~filled).nonzero().flatten()
        if empty.numel():
            worst = dists.topk(empty.numel()).indices
            centroids[empty] = points[worst]
    return centroids


def fit_residual_vq(
    frames: torch.Tensor,
    num_codebooks: int,
    codebook_size: int,
    iters: int = 10,
    seed: int = 0,
    progress: bool = True,
) -> ResidualVQ:
    """Fit ``num_codebooks`` residual stages of ``codebook_size`` entries to ``frames [N, D]``.

    Deterministic for a given ``seed``. Each stage runs k-means on the residual of the stages
    before it, with ``iters`` Lloyd iterations.
    """
    if frames.dim() != 2 or frames.shape[0] == 0:
        raise ValueError(f"frames must be a non-empty [N, D] tensor, got {tuple(frames.shape)}")
    if num_codebooks < 1 or codebook_size < 1 or iters < 0:
        raise ValueError(
            f"need num_codebooks >= 1, codebook_size >= 1, iters >= 0; got {num_codebooks}, {codebook_size}, {iters}"
        )
    generator = torch.Generator(device="cpu").manual_seed(seed)
    residual = frames.float().cpu().clone()
    books = []
    for _ in tqdm(range(num_codebooks), desc="fitting residual codebooks", unit="stage", disable=not progress):
        book = kmeans(residual, codebook_size, iters, generator)
        residual -= book[nearest(residual, book)]
        books.append(book)
    return ResidualVQ(torch.stack(books))
