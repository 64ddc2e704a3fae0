"""Sequence packing for LLM training (stages 1 and 2): several samples share a row, each sees only itself.

A padded batch is as long as its longest sample, so short samples carry padding that the LLM
runs on for nothing. `SamplePacker` lays the samples of a batch end to end instead: first-fit
decreasing into rows of at most `row_tokens` tokens (a longer sample gets a row of its own), the
rows padded to the longest; or, for flash attention, all of them in one row without padding.

How the model keeps samples apart (transformers' Qwen2.5-VL text model does the work):
- position_ids [4, R, L]. Row 0 holds text positions that restart at 0 at every sample. Given
  packed positions and no attention_mask, transformers starts a new sample wherever row 0 does not
  step by +1 (`masking_utils.find_packed_sequence_indices`) and builds a block-diagonal causal
  mask (sdpa, eager, flex attention); flash attention takes the same boundaries from row 0 as
  varlen `cu_seqlens`, but only in a batch of one row (`_is_packed_sequence`): hence
  `row_tokens=None`, where the row's length costs nothing since every sample runs on its own.
  Rows 1-3 are each sample's own M-RoPE positions, those `get_rope_index` gives the sample alone
  (`mrope_positions`), so a sample sees the positions it would see unpacked. The model uses
  given positions as they are (no `rope_deltas`, no recomputation), and runs packed inputs
  without a KV cache: transformers looks for packed samples only when there is none.
- labels: -100 at each sample's first token, so the token before it (the last of the previous
  sample) predicts nothing across the boundary.
- padding at a row's end: a segment of its own (positions from 0), pad ids, type 0, labels -100;
  every real token comes before it, so causal attention never sees it.
- media: concatenated in the order their placeholders take in the packed rows (row by row), the
  order in which the model scatters them; `audio_clip_ids` renumbered.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from nexus_o.processing.batching import MEDIA_KEYS, concat_media

IGNORE_INDEX = -100
_TEXT, _IMAGE, _VIDEO = 0, 1, 2
_SEQUENCE_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids", "labels")


@dataclass(frozen=True)
class RopeGrid:
    """What M-RoPE positions need from the model config: the vision tower's spatial merge size and
    its temporal positions a second of video (`vision_config.tokens_per_second`)."""

    spatial_merge_size: int
    tokens_per_second: float

    @classmethod
    def from_config(cls, config) -> "RopeGrid":
        """From a `NexusOConfig`."""
        vision = config.vl_config.vision_config
        return cls(int(vision.spatial_merge_size), vision.tokens_per_second)


def mrope_positions(token_types: torch.Tensor, image_grid_thw: torch.Tensor | None, video_grid_thw: torch.Tensor | None,
                    second_per_grid_ts: torch.Tensor | None, rope: RopeGrid) -> torch.Tensor:
    """The M-RoPE positions [3, L] (temporal, height, width) of one sample alone, as transformers'
    `Qwen2_5_VLModel.get_rope_index` gives them.

    token_types [L]: 0 text (audio included), 1 image, 2 video (`mm_token_type_ids` of one row);
    image_grid_thw [Ni, 3], video_grid_thw [Nv, 3], second_per_grid_ts [Nv]: the sample's own media.
    Text steps all three rows by 1. An image or video takes its merged (t, h, w) grid, offset by the
    position after the text before it (a video's t scaled by tokens_per_second x seconds a grid
    step); the text after it continues max(h, w) further on.
    """
    grids = {_IMAGE: iter(image_grid_thw.tolist() if image_grid_thw is not None else []),
             _VIDEO: iter(video_grid_thw.tolist() if video_grid_thw is not None else [])}
    seconds = iter(second_per_grid_ts if second_per_grid_ts is not None else [])
    merge = rope.spatial_merge_size
    pieces, pos = [], 0
    for kind, run in itertools.groupby(token_types.tolist()):
        left = len(list(run))
        if kind == _TEXT:
            pieces.append(torch.arange(pos, pos + left).expand(3, -1))
            pos += left
            continue
        while left > 0:  # adjacent items of one kind form one run: take grids until it is covered
            grid = next(grids[kind], None)
            if grid is None:
                raise ValueError(f"the sample holds more {'image' if kind == _IMAGE else 'video'} tokens than its "
                                 f"grids cover")
            t, h, w = grid[0], grid[1] // merge, grid[2] // merge
            interval = rope.tokens_per_second * next(seconds, 1) if kind == _VIDEO else 1
            temporal = (torch.arange(t) * interval).long()  # the same arithmetic as transformers
            tt, hh, ww = torch.meshgrid(temporal, torch.arange(h) + pos, torch.arange(w) + pos, indexing="ij")
            pieces.append(torch.stack([tt + pos, hh, ww]).reshape(3, -1))
            left -= t * h * w
            pos += max(h, w)
        if left < 0:
            raise ValueError("a media item's grid has more tokens than its placeholder run")
    return torch.cat(pieces, dim=1) if pieces else torch.zeros(3, 0, dtype=torch.long)


def first_fit_decreasing(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices of `lengths` grouped into bins of total length <= capacity (a longer item gets a bin
    of its own): longest first, each into the first bin it fits."""
    bins: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        slot = next((b for b, r in enumerate(room) if lengths[i] <= r), None)
        if slot is None:
            bins.append([i])
            room.append(capacity - lengths[i])
        else:
            bins[slot].append(i)
            room[slot] -= lengths[i]
    return bins


@dataclass(frozen=True)
class SamplePacker:
    """Packs per-sample processor outputs into one batch (see the module doc).

    rope: `RopeGrid.from_config(model.config)`; pad_token_id: the tokenizer's; row_tokens: the
    most tokens a row holds, or None for one row holding every sample with no padding (what flash
    attention needs, see the module doc).
    """

    rope: RopeGrid
    pad_token_id: int
    row_tokens: int | None

    @classmethod
    def for_model(cls, model, pad_token_id: int, row_tokens: int) -> "SamplePacker":
        """The packer for `model` (a `NexusOForConditionalGeneration`): rows of at most
        `row_tokens` tokens, or one row of every sample when its LLM runs flash attention."""
        flash = "flash" in (model.vl.model.language_model.config._attn_implementation or "")
        return cls(RopeGrid.from_config(model.config), pad_token_id, None if flash else row_tokens)

    def __call__(self, samples: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """samples: each what `NexusOProcessor` returns for one conversation with return_labels
        (input_ids [1, n], labels [1, n], mm_token_type_ids [1, n], attention_mask [1, n] all ones,
        and its media). Returns input_ids, labels, mm_token_type_ids [R, L], position_ids
        [4, R, L], the media in packed order, and no attention_mask."""
        for s in samples:
            unknown = set(s) - set(_SEQUENCE_KEYS) - set(MEDIA_KEYS)
            if unknown:
                raise ValueError(f"cannot pack {sorted(unknown)}: packing takes LLM inputs and labels only")
            if s["input_ids"].shape[0] != 1 or not bool(s["attention_mask"].all()):
                raise ValueError("pack one unpadded sample per processor output")
            if "labels" not in s:
                raise ValueError("packing needs labels (processor return_labels=True)")
        lengths = [int(s["input_ids"].shape[1]) for s in samples]
        rows = ([list(range(len(samples)))] if self.row_tokens is None
                else first_fit_decreasing(lengths, self.row_tokens))
        width = max(sum(lengths[i] for i in row) for row in rows)
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full_like(ids, IGNORE_INDEX)
        types = torch.zeros_like(ids)
        positions = torch.zeros(4, len(rows), width, dtype=torch.long)
        order = [i for row in rows for i in row]  # the placeholders' order in the packed batch
        for r, row in enumerate(rows):
            start = 0
            for i in row:
                s, n = samples[i], lengths[i]
                ids[r, start:start + n] = s["input_ids"][0]
                labels[r, start:start + n] = s["labels"][0]
                labels[r, start] = IGNORE_INDEX  # nothing is predicted across the boundary
                types[r, start:start + n] = s["mm_token_type_ids"][0]
                positions[0, r, start:start + n] = torch.arange(n)
                positions[1:, r, start:start + n] = mrope_positions(
                    s["mm_token_type_ids"][0], s.get("image_grid_thw"), s.get("video_grid_thw"),
                    s.get("second_per_grid_ts"), self.rope)
                start += n
            positions[:, r, start:] = torch.arange(width - start)  # the padding: a segment of its own
        batch = {"input_ids": ids, "labels": labels, "mm_token_type_ids": types, "position_ids": positions}
        batch.update(concat_media([samples[i] for i in order]))
        return batch
