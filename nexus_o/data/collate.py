"""Collating tokenised samples into padded or packed batches, model-agnostically.

A *feature* is one tokenised sample, as a processor returns it::

    {"input_ids": [L], "labels": [L],            # required / optional sequences
     "position_ids": [L] or [3, L],              # optional (e.g. M-RoPE); else 0..L-1
     "pixel_values": [n_patches, D], "image_grid_thw": [n_images, 3],
     "input_features": [n_audio, 128, frames], ...}   # media: any other key

Sequences are padded (``pad_features``) or concatenated into one row (``pack_features``); a
feature's own ``attention_mask`` is ignored, since the batch's is rebuilt from the lengths.
Every other key is media laid out flat, the way Qwen2.5-VL-style processors batch it:
tensors are concatenated along dim 0 and lists are joined, in sample order, so the n-th
``<image>`` placeholder of the batch still meets the n-th image. Per-sample tensors of
varying length (e.g. speech codes ``[K, T]``) go in ``stack_keys`` instead: padded along the
last dim and stacked to ``[N, ..., T_max]`` with ``{key}_lengths`` ``[N]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from nexus_o.data.manifest import LineIssue, RejectLog

SEQUENCE_KEYS = ("input_ids", "labels", "position_ids", "attention_mask")
IGNORE_INDEX = -100


def _tensor(value: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
    return value.to(dtype) if isinstance(value, torch.Tensor) and dtype else torch.as_tensor(value, dtype=dtype)


def _sequences(features: Sequence[Mapping[str, Any]]) -> list[dict[str, torch.Tensor]]:
    """input_ids / labels / position_ids of each feature as tensors, checked for equal lengths."""
    out = []
    for n, feature in enumerate(features):
        if "input_ids" not in feature:
            raise KeyError(f"feature {n} has no 'input_ids' (keys: {sorted(feature)})")
        ids = _tensor(feature["input_ids"], torch.long).reshape(-1)
        seq = {"input_ids": ids}
        if feature.get("labels") is not None:
            seq["labels"] = _tensor(feature["labels"], torch.long).reshape(-1)
        if feature.get("position_ids") is not None:
            seq["position_ids"] = _tensor(feature["position_ids"], torch.long)
        for key, value in seq.items():
            if value.shape[-1] != ids.shape[0]:
                raise ValueError(f"feature {n}: {key} has length {value.shape[-1]} but input_ids has {ids.shape[0]}")
        out.append(seq)
    if len({"labels" in seq for seq in out}) > 1:
        raise ValueError("'labels' present in some features and missing in others")
    return out


def _merge_media(features: Sequence[Mapping[str, Any]], stack_keys: Mapping[str, float]) -> dict[str, Any]:
    """Concatenate flat media in sample order; pad and stack ``stack_keys``."""
    keys = list(dict.fromkeys(k for f in features for k in f if k not in SEQUENCE_KEYS))
    merged: dict[str, Any] = {}
    for key in keys:
        values = [f.get(key) for f in features]
        if key in stack_keys:
            merged[key], merged[f"{key}_lengths"] = _pad_stack(key, values, stack_keys[key])
            continue
        present = [v for v in values if v is not None]
        if all(isinstance(v, (torch.Tensor, np.ndarray)) for v in present):
            merged[key] = torch.cat([_tensor(v) for v in present], dim=0)
        elif all(isinstance(v, (list, tuple)) for v in present):
            merged[key] = [item for v in present for item in v]
        elif all(not isinstance(v, (list, tuple, dict, torch.Tensor, np.ndarray)) for v in present):
            merged[key] = values  # per-sample scalars or strings (ids, tasks)
        else:
            kinds = sorted({type(v).__name__ for v in present})
            raise TypeError(f"cannot merge key {key!r}: features give mixed types {kinds}")
    return merged


def _pad_stack(key: str, values: list[Any], pad_value: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``[..., T_i]`` per sample (None = empty) -> ``[N, ..., T_max]`` and lengths ``[N]``."""
    tensors = [None if v is None else _tensor(v) for v in values]
    shapes = {t.shape[:-1] for t in tensors if t is not None}
    if not shapes:
        raise ValueError(f"stack key {key!r} is None in every feature")
    if len(shapes) > 1:
        raise ValueError(f"stack key {key!r}: leading shapes differ across features {sorted(map(tuple, shapes))}")
    lead = shapes.pop()
    dtype = next(t.dtype for t in tensors if t is not None)
    lengths = torch.tensor([0 if t is None else t.shape[-1] for t in tensors])
    out = torch.full((len(tensors), *lead, int(lengths.max())), pad_value, dtype=dtype)
    for n, t in enumerate(tensors):
        if t is not None:
            out[n, ..., : t.shape[-1]] = t
    return out, lengths


def pad_features(features: Sequence[Mapping[str, Any]], pad_token_id: int, *, label_pad_id: int = IGNORE_INDEX,
                 pad_to_multiple_of: int | None = None, stack_keys: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Right-pad features into a rectangle.

    Returns ``input_ids`` / ``attention_mask`` ``[B, L]``, ``labels`` ``[B, L]`` (pads =
    ``label_pad_id``) when given, ``position_ids`` ``[B, L]`` (or ``[3, B, L]`` for ``[3, L]``
    inputs, the M-RoPE layout) when given, plus merged media.
    """
    seqs = _sequences(features)
    length = max(s["input_ids"].shape[0] for s in seqs)
    if pad_to_multiple_of:
        length = -(-length // pad_to_multiple_of) * pad_to_multiple_of
    batch: dict[str, Any] = {
        "input_ids": torch.full((len(seqs), length), pad_token_id, dtype=torch.long),
        "attention_mask": torch.zeros((len(seqs), length), dtype=torch.long),
    }
    if "labels" in seqs[0]:
        batch["labels"] = torch.full((len(seqs), length), label_pad_id, dtype=torch.long)
    positions = []
    for n, seq in enumerate(seqs):
        size = seq["input_ids"].shape[0]
        batch["input_ids"][n, :size] = seq["input_ids"]
        batch["attention_mask"][n, :size] = 1
        if "labels" in seq:
            batch["labels"][n, :size] = seq["labels"]
        if "position_ids" in seq:
            pos = seq["position_ids"]
            positions.append(torch.nn.functional.pad(pos, (0, length - size)))
    if positions:
        if len(positions) != len(seqs):
            raise ValueError("'position_ids' present in some features and missing in others")
        batch["position_ids"] = torch.stack(positions, dim=-2)  # [L] -> [B, L]; [3, L] -> [3, B, L]
    batch.update(_merge_media(features, stack_keys or {}))
    return batch


def pack_features(features: Sequence[Mapping[str, Any]], *, label_pad_id: int = IGNORE_INDEX,
                  stack_keys: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Concatenate features into one row with per-sample boundaries.

    Returns ``input_ids`` ``[1, N]`` (N = total tokens), ``labels`` ``[1, N]`` with each sample's
    first label set to ``label_pad_id`` (the shifted loss would otherwise predict it from the
    previous sample), ``position_ids`` ``[1, N]`` restarting at 0 per sample (or the features' own,
    e.g. ``[3, 1, N]``), ``cu_seqlens`` int32 ``[S + 1]`` (sample starts, then N), ``seq_idx``
    ``[1, N]`` (sample number of each token), ``max_seqlen`` (int), plus merged media.
    """
    seqs = _sequences(features)
    sizes = [s["input_ids"].shape[0] for s in seqs]
    given = ["position_ids" in s for s in seqs]
    if any(given) and not all(given):
        raise ValueError("'position_ids' present in some features and missing in others")
    positions = [s["position_ids"] if all(given) else torch.arange(size) for s, size in zip(seqs, sizes)]
    batch: dict[str, Any] = {
        "input_ids": torch.cat([s["input_ids"] for s in seqs]).unsqueeze(0),
        "position_ids": torch.cat(positions, dim=-1).unsqueeze(-2),
        "cu_seqlens": torch.tensor([0, *np.cumsum(sizes)], dtype=torch.int32),
        "seq_idx": torch.repeat_interleave(torch.arange(len(seqs)), torch.tensor(sizes)).unsqueeze(0),
        "max_seqlen": max(sizes),
    }
    if "labels" in seqs[0]:
        labels = []
        for seq in seqs:
            lab = seq["labels"].clone()
            lab[:1] = label_pad_id
            labels.append(lab)
        batch["labels"] = torch.cat(labels).unsqueeze(0)
    batch.update(_merge_media(features, stack_keys or {}))
    return batch


@dataclass
class OmniCollator:
    """DataLoader ``collate_fn``: drop rows whose media failed, tokenise, then pad or pack.

    ``processor(row) -> feature`` turns a dataset row (with media decoded by ``MediaLoader``)
    into a feature as described in the module doc; None means rows already are features.
    Rows with a ``media_error`` are recorded in ``rejects`` and left out, so a bad file never
    stops an epoch; a batch left empty comes back as ``{}`` (skip it in the training loop).
    """

    processor: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None
    pad_token_id: int = 0
    pack: bool = False
    label_pad_id: int = IGNORE_INDEX
    pad_to_multiple_of: int | None = None
    stack_keys: Mapping[str, float] = field(default_factory=dict)
    rejects: RejectLog = field(default_factory=RejectLog)

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        features = []
        for row in rows:
            if row.get("media_error"):
                self.rejects.record(LineIssue(str(row.get("source")), int(row.get("line", 0)), row["media_error"]))
                continue
            features.append(self.processor(row) if self.processor is not None else row)
        if not features:
            return {}
        if self.pack:
            return pack_features(features, label_pad_id=self.label_pad_id, stack_keys=self.stack_keys)
        return pad_features(features, self.pad_token_id, label_pad_id=self.label_pad_id,
                            pad_to_multiple_of=self.pad_to_multiple_of, stack_keys=self.stack_keys)
