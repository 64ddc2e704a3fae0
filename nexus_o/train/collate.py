"""Manifest rows -> model batches for every stage.

Rows come from `nexus_o.data.dataset.load_manifest_dataset` (absolute media paths). The
processor renders the chat template, loads and encodes media and masks labels to the assistant
replies. For stage 3 the speech targets (codes [K, T] per row) are padded into
`speech_codes` [B, K, T] with `speech_code_lengths` [B], and `speech_text_mask` marks the
reply tokens the decoder reads (the processor's `reply_mask`: the last assistant message, without
the closing `<|im_end|>`, the same condition inference speaks from); no `labels`: stage 3 trains
the speech decoder only.
With `frame_rate` set (a "pointer" speech decoder) `speech_token_index` [B, T] adds the reply
token spoken at each frame, from the targets' word timings (`nexus_o.processing.word_alignment`).

With a `packer` (stages 1 and 2, `TrainConfig.pack_to`) each row is processed alone and the
samples are packed into fewer rows with per-sample positions (`nexus_o.train.packing`).

A row whose media fail to decode is recorded in the reject log and replaced by another row of
the same batch, so a bad file never stops an epoch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from nexus_o.data.manifest import LineIssue, RejectLog
from nexus_o.data.media_checks import load_codes
from nexus_o.processing.media_decoding import MediaError
from nexus_o.processing.word_alignment import token_frame_index
from nexus_o.train.packing import SamplePacker


def _conversation(row: Mapping[str, Any]) -> dict:
    return {"messages": row["messages"], "images": row.get("images") or None,
            "videos": row.get("videos") or None, "audios": row.get("audios") or None}


@dataclass
class TrainCollator:
    """`collate_fn` for the Trainer. speech=True adds the stage-3 speech targets; frame_rate
    (codec frames a second) adds their per-frame reply tokens for the "pointer" alignment;
    touch_all_encoders asks the model to run the encoders a batch does not use (distributed runs,
    see `NexusOForConditionalGeneration.forward`); packer packs the samples of an LLM batch."""

    processor: Any
    speech: bool = False
    rejects: RejectLog = field(default_factory=RejectLog)
    frame_rate: float | None = None
    touch_all_encoders: bool = False
    packer: SamplePacker | None = None

    def __post_init__(self) -> None:
        if self.speech and self.packer is not None:
            raise ValueError("packing is for LLM batches (stages 1 and 2); stage 3's speech targets are per row")

    def _codes(self, row: Mapping[str, Any]) -> np.ndarray:
        source = row.get("speech_codes_file") or row.get("speech_codes")
        if not source:
            raise MediaError("stage 3 needs speech targets as codes (speech.codes); "
                             "encode target audio with the codec first")
        return load_codes(source)

    def _usable(self, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """Rows whose media and targets load; the others go to the reject log."""
        good = []
        for row in rows:
            try:
                self._collate([row])  # media, and in stage 3 the targets and their word timings
                good.append(row)
            except (MediaError, ValueError) as err:
                self.rejects.record(LineIssue(str(row.get("source")), int(row.get("line") or 0), str(err)))
        if not good:
            raise MediaError(f"every row of a batch failed to load (first: {rows[0].get('source')} line "
                             f"{rows[0].get('line')}); see the reject log")
        return [good[i % len(good)] for i in range(len(rows))]

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        try:
            batch = self._collate(rows)
        except (MediaError, ValueError):
            batch = self._collate(self._usable(rows))
        if self.touch_all_encoders:
            batch["touch_all_encoders"] = True
        return batch

    def _collate(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if self.packer is not None:
            return self.packer([dict(self.processor.apply_chat_template([_conversation(r)], add_generation_prompt=False,
                                                                        return_labels=True)) for r in rows])
        batch = dict(self.processor.apply_chat_template([_conversation(r) for r in rows],
                                                        add_generation_prompt=False, return_labels=not self.speech,
                                                        return_reply_mask=self.speech))
        if not self.speech:
            return batch
        codes = [self._codes(r) for r in rows]
        k = codes[0].shape[0]
        if any(c.shape[0] != k for c in codes):
            raise ValueError(f"speech codes of one batch have different codebook counts: {[c.shape[0] for c in codes]}")
        lengths = torch.tensor([c.shape[1] for c in codes])
        padded = torch.zeros(len(codes), k, int(lengths.max()), dtype=torch.long)
        for i, c in enumerate(codes):
            padded[i, :, : c.shape[1]] = torch.from_numpy(c)
        text_mask = batch.pop("reply_mask")
        batch.update(speech_codes=padded, speech_code_lengths=lengths, speech_text_mask=text_mask)
        if self.frame_rate is not None:
            index = torch.zeros(len(rows), padded.shape[2], dtype=torch.long)
            for i, (row, c) in enumerate(zip(rows, codes)):
                index[i, : c.shape[1]] = torch.from_numpy(self._token_index(row, c.shape[1], int(text_mask[i].sum())))
                index[i, c.shape[1]:] = index[i, c.shape[1] - 1]
            batch["speech_token_index"] = index
        return batch

    def _token_index(self, row: Mapping[str, Any], frames: int, reply_tokens: int) -> np.ndarray:
        """The reply token spoken at each of the target's frames [frames]."""
        reply = str(row["messages"][-1]["content"])
        spans = self.processor.tokenizer(reply, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        where = f"{row.get('source')} line {row.get('line')}"
        if len(spans) != reply_tokens:
            raise ValueError(f"{where}: the reply tokenises to {len(spans)} tokens alone but {reply_tokens} in the "
                             f"chat template; cannot place its word timings")
        try:
            return token_frame_index(reply, spans, frames, self.frame_rate, row.get("speech_words") or None)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from err

