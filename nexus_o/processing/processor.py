"""`NexusOProcessor`: Qwen2.5-VL image processor + Whisper feature extractor + tokenizer.

It turns text with one placeholder per media item (`<|image_pad|>`, `<|video_pad|>`,
`<|AUDIO|>`) into model inputs, expanding each placeholder to the item's token count:
images and videos by their patch grid (as Qwen2.5-VL's processor does), audio by its length
(`audio_token_count`: 10 tokens a second at Whisper-large-v3 + 5-frame stacking). Audio is
resampled to 16 kHz, cut into the encoder's 30 s windows and never clipped. `apply_chat_template`
takes OpenAI-style or ms-swift-style messages (see `nexus_o.processing.chat`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import BatchFeature, ProcessorMixin

from nexus_o.processing.audio_encoding import audio_token_count, split_windows, window_samples
from nexus_o.processing.chat import render_chat
from nexus_o.processing.conversation import Conversation
from nexus_o.processing.media_decoding import TARGET_SAMPLE_RATE, load_audio, load_image, load_video
from nexus_o.processing.tokenizer import AUDIO_PAD
from nexus_o.processing.video import patchify_video

IGNORE_INDEX = -100


def _check_encodable(texts: list[str]) -> None:
    """Text the tokenizer cannot take (lone UTF-16 surrogates, non-strings) -> a ValueError saying where."""
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"text {i} must be a string, got {type(text).__name__}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            raise ValueError(f"text {i} cannot be tokenized: {err.reason} ({text[err.start:err.end]!r} at "
                             f"character {err.start})") from None


class NexusOProcessor(ProcessorMixin):
    """Processor of `NexusOForConditionalGeneration`; saves and loads with the model.

    audio_max_source_positions / audio_stack_frames must match the model's audio encoder and
    adapter (`from_model_config` copies them); video_fps is the frame sampling rate for videos.
    """

    def __init__(self, image_processor=None, feature_extractor=None, tokenizer=None, chat_template=None,
                 audio_max_source_positions: int = 1500, audio_stack_frames: int = 5,
                 video_fps: float = 2.0, video_max_frames: int = 64):
        self.audio_max_source_positions = audio_max_source_positions
        self.audio_stack_frames = audio_stack_frames
        self.video_fps = video_fps
        self.video_max_frames = video_max_frames
        super().__init__(image_processor, feature_extractor, tokenizer, chat_template=chat_template)
        self.image_token, self.video_token, self.audio_token = "<|image_pad|>", "<|video_pad|>", AUDIO_PAD
        ids = tokenizer.convert_tokens_to_ids([self.image_token, self.video_token, self.audio_token])
        self.image_token_id, self.video_token_id, self.audio_token_id = ids

    # -- counts -------------------------------------------------------------------------------
    def audio_tokens(self, num_samples: int) -> int:
        """Placeholder tokens for a 16 kHz clip of `num_samples` samples."""
        return audio_token_count(num_samples, self.audio_max_source_positions, self.audio_stack_frames)

    # -- audio features -------------------------------------------------------------------------
    def _audio_features(self, clips: list[np.ndarray]) -> dict[str, torch.Tensor]:
        window = window_samples(self.audio_max_source_positions)
        pieces, lens, clip_ids = [], [], []
        for clip_id, wav in enumerate(clips):
            start = 0
            for n in split_windows(len(wav), window):
                pieces.append(wav[start:start + n])
                lens.append(-(-n // self.feature_extractor.hop_length))
                clip_ids.append(clip_id)
                start += n
        feats = self.feature_extractor(pieces, sampling_rate=TARGET_SAMPLE_RATE, padding="max_length",
                                       max_length=window, return_tensors="pt")["input_features"]
        return {"input_features": feats, "feature_lens": torch.tensor(lens),
                "audio_clip_ids": torch.tensor(clip_ids)}

    # -- main entry -----------------------------------------------------------------------------
    def __call__(self, text: str | list[str], images: list | None = None, videos: list | None = None,
                 audios: list | None = None, sampling_rate: int | None = None, padding: bool = True,
                 return_labels: bool = False, return_reply_mask: bool = False, base_dir: str | Path | None = None,
                 return_tensors: str = "pt", **_: Any) -> BatchFeature:
        """Text with one placeholder per item + media (in placeholder order, across the batch).

        Returns input_ids [B, L], attention_mask [B, L], mm_token_type_ids [B, L]; with images
        pixel_values [patches, C*tp*p*p] + image_grid_thw [N, 3]; with videos pixel_values_videos,
        video_grid_thw, second_per_grid_ts; with audio input_features [W, n_mels, frames],
        feature_lens [W], audio_clip_ids [W]; with return_labels, labels [B, L] (assistant
        replies only, -100 elsewhere); with return_reply_mask, reply_mask [B, L] (`reply_mask`).
        """
        texts = [text] if isinstance(text, str) else list(text)
        _check_encodable(texts)
        base = Path(base_dir) if base_dir is not None else None
        data: dict[str, Any] = {}
        expand: dict[str, list[int]] = {}
        merge = self.image_processor.merge_size ** 2
        if images:
            pil = [load_image(src, base) for src in images]
            out = self.image_processor(images=pil, return_tensors="pt")
            data.update(pixel_values=out["pixel_values"], image_grid_thw=out["image_grid_thw"])
            expand[self.image_token] = [int(g.prod()) // merge for g in out["image_grid_thw"]]
        if videos:
            patches, grids, spg = zip(*(patchify_video(
                load_video(v, base, self.video_fps, self.video_max_frames), self.image_processor)
                for v in videos))
            data.update(pixel_values_videos=torch.from_numpy(np.concatenate(patches)),
                        video_grid_thw=torch.tensor(grids), second_per_grid_ts=torch.tensor(spg))
            expand[self.video_token] = [int(np.prod(g)) // merge for g in grids]
        if audios:
            # A bare array is taken to be at `sampling_rate` (default: the encoder's 16 kHz).
            clips = [load_audio((src, sampling_rate or TARGET_SAMPLE_RATE) if isinstance(src, np.ndarray)
                                or hasattr(src, "numpy") else src, TARGET_SAMPLE_RATE, base_dir=base)[0]
                     for src in audios]
            data.update(self._audio_features(clips))
            expand[self.audio_token] = [self.audio_tokens(len(c)) for c in clips]
        texts = self._expand(texts, expand, {self.image_token: images, self.video_token: videos,
                                             self.audio_token: audios})
        enc = self.tokenizer(texts, padding=padding, return_tensors=return_tensors)
        ids = enc["input_ids"]
        data["input_ids"], data["attention_mask"] = ids, enc["attention_mask"]
        data["mm_token_type_ids"] = (ids == self.image_token_id).long() + 2 * (ids == self.video_token_id).long()
        if return_labels:
            data["labels"] = self.assistant_labels(ids, enc["attention_mask"])
        if return_reply_mask:
            data["reply_mask"] = self.reply_mask(ids, enc["attention_mask"])
        return BatchFeature(data=data)

    @staticmethod
    def _expand(texts: list[str], expand: dict[str, list[int]], given: dict[str, list | None]) -> list[str]:
        """Replace the i-th placeholder of each kind by its token count; counts must match."""
        out = []
        cursor = {token: 0 for token in given}
        for text in texts:
            for token, counts in ((t, expand.get(t, [])) for t in given):
                parts = text.split(token)
                start = cursor[token]
                if start + len(parts) - 1 > len(counts):
                    raise ValueError(f"the text holds {sum(t.count(token) for t in texts)} {token} "
                                     f"placeholder(s) but {len(given[token] or [])} item(s) were given")
                rebuilt = [parts[0]]
                for i, part in enumerate(parts[1:]):
                    rebuilt.append(token * counts[start + i] + part)
                cursor[token] = start + len(parts) - 1
                text = "".join(rebuilt)
            out.append(text)
        for token, items in given.items():
            if cursor[token] != len(items or []):
                raise ValueError(f"the text holds {cursor[token]} {token} placeholder(s) but "
                                 f"{len(items or [])} item(s) were given")
        return out

    def _assistant_spans(self, row: list[int]) -> list[tuple[int, int]]:
        """(start, end) of each assistant reply in a row of ids: start after the
        "<|im_start|>assistant\n" header, end at its <|im_end|> (or the row's end), exclusive."""
        prefix = self.tokenizer("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
        end_id = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        n, spans, i = len(prefix), [], 0
        while i <= len(row) - n:
            if row[i:i + n] == prefix:
                j = i + n
                while j < len(row) and row[j] != end_id:
                    j += 1
                spans.append((i + n, j))
                i = j + 1
            else:
                i += 1
        return spans

    def assistant_labels(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Labels [B, L]: the tokens of assistant replies (up to and with <|im_end|>), -100 elsewhere."""
        labels = torch.full_like(input_ids, IGNORE_INDEX)
        for b, row in enumerate(input_ids.tolist()):
            for start, end in self._assistant_spans(row):
                stop = min(end + 1, len(row))
                labels[b, start:stop] = input_ids[b, start:stop]
        return labels.masked_fill(attention_mask == 0, IGNORE_INDEX)

    def reply_mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The reply the speech decoder speaks, [B, L] bool: the tokens of each row's last assistant
        turn, without its closing <|im_end|> (an empty turn: that <|im_end|>, so the decoder still
        has a token to start from). Stage-3 training and inference both condition on exactly this."""
        mask = torch.zeros_like(input_ids, dtype=torch.bool)
        for b, row in enumerate(input_ids.tolist()):
            spans = self._assistant_spans(row)
            if spans:
                start, end = spans[-1]
                mask[b, start:end if end > start else min(end + 1, len(row))] = True
        return mask & attention_mask.bool()

    def apply_chat_template(self, conversations: list[dict] | list[list[dict]] | dict | Conversation | list,
                            add_generation_prompt: bool = True, tokenize: bool = True,
                            base_dir: str | Path | None = None, return_labels: bool = False,
                            return_reply_mask: bool = False, **kwargs: Any):
        """Render one or several conversations and (by default) process them.

        A conversation is a list of messages, a dict with `messages` and optional
        `images` / `videos` / `audios` lists (the manifest shape), or a `Conversation`. With
        tokenize=False returns the prompt text(s) only.
        """
        if isinstance(conversations, (dict, Conversation)) or (conversations and isinstance(conversations[0], dict)
                                                and "role" in conversations[0]):
            conversations = [conversations]
        rendered = []
        for conv in conversations:
            if isinstance(conv, dict):
                rendered.append(render_chat(conv["messages"], conv.get("images"), conv.get("videos"),
                                            conv.get("audios"), add_generation_prompt))
            else:
                rendered.append(render_chat(conv, add_generation_prompt=add_generation_prompt))
        if not tokenize:
            texts = [r.text for r in rendered]
            return texts[0] if len(texts) == 1 else texts
        return self([r.text for r in rendered], images=[m for r in rendered for m in r.images] or None,
                    videos=[m for r in rendered for m in r.videos] or None,
                    audios=[m for r in rendered for m in r.audios] or None, base_dir=base_dir,
                    return_labels=return_labels, return_reply_mask=return_reply_mask, **kwargs)

    def batch_decode(self, *args, **kwargs):
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args, **kwargs):
        return self.tokenizer.decode(*args, **kwargs)

    @property
    def model_input_names(self):
        return ["input_ids", "attention_mask", "mm_token_type_ids", "pixel_values", "image_grid_thw",
                "pixel_values_videos", "video_grid_thw", "second_per_grid_ts", "input_features",
                "feature_lens", "audio_clip_ids"]
