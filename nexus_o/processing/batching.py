"""Joining inputs the processor made separately, as if it had processed them together.

The processor puts a batch's media one after another in placeholder order across the rows
(pixel_values [patches, D], image_grid_thw [N, 3], input_features [W, mels, frames], ...), and
the model scatters them back in that order. So inputs processed one conversation at a time join
by concatenating their media in row order; only `audio_clip_ids` (which number the clips of
the whole batch from 0) move on by the clips of the rows before.

`join_rows` makes a padded batch of rows (what generation takes: left padding, as the
tokenizer pads); `concat_media` is the media half, also what packing several samples into one
row needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from transformers import BatchFeature

# Per-token keys: [1, L] each, joined as rows of one batch.
TOKEN_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids")
# Media keys: concatenated along dim 0 in row order.
MEDIA_KEYS = ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw", "second_per_grid_ts",
              "input_features", "feature_lens", "audio_clip_ids")


def concat_media(features: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The media tensors of `features` (processor outputs, in order) as one processor output would hold them.

    A key must be in every item that has media of its kind: images (pixel_values, image_grid_thw),
    videos (pixel_values_videos, video_grid_thw, second_per_grid_ts) or audio (input_features,
    feature_lens, audio_clip_ids). audio_clip_ids [W] of item i are offset by the clips of items < i.
    """
    out: dict[str, list[torch.Tensor]] = {}
    clips = 0
    for feature in features:
        for key in MEDIA_KEYS:
            if key not in feature:
                continue
            value = feature[key]
            if key == "audio_clip_ids":
                value = value + clips
                clips = int(value.max()) + 1 if value.numel() else clips
            out.setdefault(key, []).append(value)
    return {key: torch.cat(values) for key, values in out.items()}


def join_rows(features: Sequence[Mapping[str, torch.Tensor]], pad_id: int, side: str = "left") -> BatchFeature:
    """One batch [B, max L] from B processor outputs of one row each (input_ids [1, L_i], ...).

    Rows are padded on `side` with `pad_id` (input_ids), 0 (attention_mask, mm_token_type_ids);
    media are concatenated (`concat_media`). Equal to processing the B conversations together
    with the tokenizer padding on `side`. Raises ValueError naming an item with more than one
    row, no input_ids, or a key this does not know how to join.
    """
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    known = set(TOKEN_KEYS) | set(MEDIA_KEYS)
    for i, feature in enumerate(features):
        unknown = sorted(set(feature) - known)
        if unknown:
            raise ValueError(f"inputs {i}: cannot join key(s) {unknown}")
        if "input_ids" not in feature or feature["input_ids"].shape[0] != 1:
            raise ValueError(f"inputs {i}: expected input_ids of one row [1, L]")
        missing = [key for key in TOKEN_KEYS if (key in feature) != (key in features[0])]
        if missing:
            raise ValueError(f"inputs {i}: token keys {missing} differ from those of inputs 0")
    if not features:
        raise ValueError("no inputs to join")
    width = max(int(f["input_ids"].shape[1]) for f in features)
    data: dict[str, torch.Tensor] = {}
    for key in TOKEN_KEYS:
        if key not in features[0]:
            continue
        fill = pad_id if key == "input_ids" else 0
        rows = []
        for feature in features:
            row = feature[key]
            pad = row.new_full((1, width - row.shape[1]), fill)
            rows.append(torch.cat([pad, row] if side == "left" else [row, pad], dim=1))
        data[key] = torch.cat(rows)
    data.update(concat_media(features))
    return BatchFeature(data=data)
