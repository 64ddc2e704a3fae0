"""What the GPU benchmarks share: a synthetic prompt built from a config alone, a stand-in
tokenizer for presets without one (7B), and building weights on the device in a given dtype.

The prompt is what the GPU issue measured: per row, text, <vision_start> image <vision_end>,
<audio_start> audio <audio_end>, text (optionally padded with random text to a total length),
media processed as `NexusOProcessor` does; ids come from the config, so no tokenizer is needed.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image
from transformers import Qwen2VLImageProcessorPil, WhisperFeatureExtractor

from nexus_o.processing.audio_encoding import audio_token_count, split_windows, window_samples


@contextmanager
def default_dtype(dtype: torch.dtype):
    """Tensors made inside (model weights) get `dtype`."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


class StubTokenizer:
    """What decoding asks of a tokenizer, for random-weight replies: a token reads as its id."""

    def __init__(self, eos: int, pad: int | None = None):
        self.eos_token_id, self.pad_token_id = eos, eos if pad is None else pad

    def convert_tokens_to_ids(self, token: str) -> int:
        return self.eos_token_id

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return "".join(f" {int(i)}" for i in ids)


class StubProcessor:
    """A processor with a `StubTokenizer` (decoding only; prompts come from `synthetic_inputs`)."""

    def __init__(self, eos: int, pad: int | None = None):
        self.tokenizer = StubTokenizer(eos, pad)

    def batch_decode(self, ids, skip_special_tokens: bool = True) -> list[str]:
        return [self.tokenizer.decode(row) for row in ids]


def synthetic_inputs(cfg, *, text_tokens: int, image_size: int, audio_seconds: float, batch: int = 1,
                     total_len: int | None = None, labels: bool = False,
                     device: torch.device | str = "cpu") -> tuple[dict, dict]:
    """Model inputs for `batch` rows (see the module doc) on `device`, and a description with the
    token counts. With `labels`, targets on the text positions (media and their markers carry none)."""
    vl = cfg.vl_config
    vision = vl.vision_config
    rng = np.random.default_rng(0)
    images = Qwen2VLImageProcessorPil(patch_size=vision.patch_size, temporal_patch_size=vision.temporal_patch_size,
                                      merge_size=vision.spatial_merge_size)
    pix = images(images=[Image.fromarray(rng.integers(0, 256, (image_size, image_size, 3), dtype=np.uint8))],
                 return_tensors="pt")
    grid = pix["image_grid_thw"]
    patches = int(grid[0].prod())
    image_tokens = patches // vision.spatial_merge_size ** 2
    samples = int(audio_seconds * 16000)
    window = window_samples(cfg.audio_config.max_source_positions)
    extractor = WhisperFeatureExtractor(feature_size=cfg.audio_config.num_mel_bins)
    wav = (0.1 * rng.standard_normal(samples)).astype(np.float32)
    pieces, lens, start = [], [], 0
    for n in split_windows(samples, window):
        pieces.append(wav[start:start + n])
        lens.append(-(-n // extractor.hop_length))
        start += n
    feats = extractor(pieces, sampling_rate=16000, padding="max_length", max_length=window,
                      return_tensors="pt")["input_features"]
    audio_tokens = audio_token_count(samples, cfg.audio_config.max_source_positions, cfg.adapter_config.stack_frames)
    text = vl.text_config
    specials = {vl.image_token_id, vl.video_token_id, vl.vision_start_token_id, vl.vision_end_token_id,
                cfg.audio_token_id, cfg.audio_start_token_id, cfg.audio_end_token_id, text.eos_token_id}
    low = max([s for s in specials if s is not None and s < text.vocab_size // 2], default=31) + 1
    high = min([s for s in specials if s is not None and s >= text.vocab_size // 2], default=text.vocab_size)
    gen = torch.Generator().manual_seed(1)
    rows = []
    for _ in range(batch):
        head = torch.randint(low, high, (text_tokens // 2,), generator=gen).tolist()
        tail = torch.randint(low, high, (text_tokens - text_tokens // 2,), generator=gen).tolist()
        row = (head + [vl.vision_start_token_id] + [vl.image_token_id] * image_tokens + [vl.vision_end_token_id]
               + [cfg.audio_start_token_id] + [cfg.audio_token_id] * audio_tokens + [cfg.audio_end_token_id] + tail)
        if total_len is not None:
            if len(row) > total_len:
                raise ValueError(f"a row needs {len(row)} tokens, more than the {total_len} asked for")
            row += torch.randint(low, high, (total_len - len(row),), generator=gen).tolist()
        rows.append(row)
    ids = torch.tensor(rows)
    out = {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device),
           "mm_token_type_ids": (ids == vl.image_token_id).long().to(device),
           "pixel_values": pix["pixel_values"].repeat(batch, 1).to(device),
           "image_grid_thw": grid.repeat(batch, 1).to(device),
           "input_features": feats.repeat(batch, 1, 1).to(device),
           "feature_lens": torch.tensor(lens * batch), "audio_clip_ids": torch.arange(batch).repeat_interleave(len(pieces))}
    if labels:
        media = torch.tensor([vl.image_token_id, vl.vision_start_token_id, vl.vision_end_token_id,
                              cfg.audio_token_id, cfg.audio_start_token_id, cfg.audio_end_token_id])
        out["labels"] = ids.masked_fill(torch.isin(ids, media), -100).to(device)
    info = {"batch": batch, "length": ids.shape[1], "text_tokens": text_tokens, "image_tokens": image_tokens,
            "image_patches": patches, "audio_tokens": audio_tokens, "audio_windows": len(pieces)}
    return out, info
