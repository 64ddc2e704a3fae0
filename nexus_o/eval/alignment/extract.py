"""Features for the alignment analysis (paper section 4.2), extracted in batches without gradients.

Unembedding stage (Table 7), one row per sample, each the mean over that sample's tokens:

- ``vision``: the image's merged vision tokens (vision tower + merger: what replaces the image
  placeholders in the LLM input), [N, H];
- ``text``: the caption's token embeddings (the input embedding table), [N, H];
- ``audio`` (ours only): the audio adapter's outputs for the spoken caption, [N, H].

Embedding stage (Figure 3): the hidden state of the last prompt token at every LLM layer,
[L + 1, N, H], where index 0 is the token-embedding layer (media features already in place) and
index i the output of decoder layer i (the last one after the final norm, as transformers
returns it). Three prompts per sample:

- ``vision``: the sample's prompt with its image only (``<audio>`` dropped), rendered by the
  chat template with the generation prompt, so the last token is the one the caption would be
  generated from;
- ``vision_audio`` (ours only): the same prompt with the image and its spoken caption;
- ``text``: the caption text alone, tokenised without any template (as language models are
  probed in the Platonic Representation Hypothesis code), last caption token.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from nexus_o.eval.alignment.backbones import Backbone
from nexus_o.eval.alignment.inputs import AlignmentInputError
from nexus_o.eval.alignment.samples import CaptionSample

STAGES = ("unembedding", "embedding")


@dataclass
class ModelFeatures:
    """Everything extracted from one model; arrays are float32, rows in manifest order.

    Attributes:
        unembedding: ``vision``, ``text`` and (ours) ``audio`` means, each [N, H].
        embedding: ``vision``, ``text`` and (ours) ``vision_audio`` last-token states, [L + 1, N, H].
    """

    unembedding: dict[str, np.ndarray] = field(default_factory=dict)
    embedding: dict[str, np.ndarray] = field(default_factory=dict)

    def save(self, folder: str | Path) -> list[Path]:
        """Write ``<stage>_<key>.npy`` files into ``folder``; returns their paths.

        Feature files of an earlier run in ``folder`` are removed first, so that a later
        :meth:`load` never mixes runs (e.g. audio features left from a run with spoken captions).
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for stage in STAGES:
            for stale in folder.glob(f"{stage}_*.npy"):
                stale.unlink()
        written = []
        for stage in STAGES:
            for key, array in getattr(self, stage).items():
                written.append(folder / f"{stage}_{key}.npy")
                np.save(written[-1], array)
        return written

    @classmethod
    def load(cls, folder: str | Path) -> ModelFeatures:
        """Read what :meth:`save` wrote (plain arrays only, nothing unpickled).

        Raises:
            FileNotFoundError: the vision or text features of a stage are missing.
        """
        folder = Path(folder)
        features = cls()
        for stage in STAGES:
            for path in sorted(folder.glob(f"{stage}_*.npy")):
                getattr(features, stage)[path.stem[len(stage) + 1:]] = np.load(path, allow_pickle=False)
        missing = [f"{stage}_{key}.npy" for stage in STAGES for key in ("vision", "text")
                   if key not in getattr(features, stage)]
        if missing:
            raise FileNotFoundError(f"{folder} lacks the feature file(s) {missing}; "
                                    "extract them with `nexus-o align run`")
        return features


def _batches(samples: Sequence[CaptionSample], size: int, desc: str, progress: bool) -> Iterator[list[CaptionSample]]:
    starts = range(0, len(samples), size)
    for start in tqdm(starts, desc=desc, unit="batch", disable=not progress):
        yield list(samples[start:start + size])


def _on(batch, device: torch.device) -> dict[str, Tensor]:
    return {k: v.to(device) if isinstance(v, Tensor) else v for k, v in dict(batch).items()}


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean over dim 1 of values [B, T, H] where mask [B, T] is 1: [B, H], in float32."""
    mask = mask.float().unsqueeze(-1)
    return (values.float() * mask).sum(1) / mask.sum(1)


def _last_token_states(hidden_states: Sequence[Tensor], attention_mask: Tensor) -> Tensor:
    """The state of each row's last real token at every layer: [L + 1, B, H].

    Works for left and right padding alike: the last real token is the highest position whose
    attention mask is 1.
    """
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    last = (positions * attention_mask.long()).amax(dim=1)
    rows = torch.arange(attention_mask.shape[0], device=attention_mask.device)
    return torch.stack([h[rows, last] for h in hidden_states])


def _numpy(chunks: list[Tensor], dim: int) -> np.ndarray:
    return torch.cat(chunks, dim=dim).float().cpu().numpy()


@torch.no_grad()
def vision_means(backbone: Backbone, samples: Sequence[CaptionSample], batch_size: int = 8,
                 progress: bool = True) -> np.ndarray:
    """Mean of each image's merged vision tokens (vision tower + merger outputs): [N, H]."""
    processor, out = backbone.processor, []
    for batch in _batches(samples, batch_size, f"{backbone.name}: vision means", progress):
        inputs = _on(processor(text=[processor.image_token] * len(batch), images=[s.image for s in batch]),
                     backbone.device)
        tokens = backbone.vl.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"],
                                                return_dict=True).pooler_output
        out.append(torch.stack([t.float().mean(0) for t in tokens]))  # float32 sums, also for bf16 models
    return _numpy(out, 0)


@torch.no_grad()
def text_means(backbone: Backbone, samples: Sequence[CaptionSample], batch_size: int = 8,
               progress: bool = True) -> np.ndarray:
    """Mean of each caption's token embeddings (input embedding table, no special tokens): [N, H].

    Raises:
        AlignmentInputError: a caption tokenises to nothing.
    """
    embed, out = backbone.vl.get_input_embeddings(), []
    for batch in _batches(samples, batch_size, f"{backbone.name}: text means", progress):
        enc = _captions(backbone, batch)
        out.append(_masked_mean(embed(enc["input_ids"]), enc["attention_mask"]))
    return _numpy(out, 0)


def _captions(backbone: Backbone, batch: Sequence[CaptionSample]) -> dict[str, Tensor]:
    """Caption token ids [B, T] and attention mask [B, T], no template and no special tokens."""
    enc = backbone.processor.tokenizer([s.caption for s in batch], add_special_tokens=False, padding=True,
                                       return_tensors="pt")
    empty = [s.line for s, n in zip(batch, enc["attention_mask"].sum(1).tolist(), strict=True) if n == 0]
    if empty:
        raise AlignmentInputError(f"the captions of manifest line(s) {empty} give no tokens")
    return _on(enc, backbone.device)


class _AudioTokens:
    """Collects the audio adapter's outputs during a forward pass: the LLM's audio tokens.

    ``encode_audio`` returns the clips' tokens concatenated in clip order, which is the order
    of the adapter's outputs, so their concatenation splits back into clips by the per-row
    counts of audio placeholders. This way one pass gives both the prompt states and the audio
    means, and the (costly) audio encoder runs once per clip.
    """

    def __init__(self, adapter: torch.nn.Module):
        self.adapter, self.chunks = adapter, []

    def __enter__(self) -> Self:
        self.handle = self.adapter.register_forward_hook(lambda _m, _i, out: self.chunks.append(out))
        return self

    def __exit__(self, *_exc) -> None:
        self.handle.remove()

    def means(self, counts: list[int]) -> Tensor:
        """Mean audio token of each row, given its number of audio placeholders: [B, H]."""
        tokens = torch.cat(self.chunks)
        if tokens.shape[0] != sum(counts):
            raise RuntimeError(f"the audio adapter gave {tokens.shape[0]} tokens for {sum(counts)} placeholders")
        return torch.stack([t.float().mean(0) for t in tokens.split(counts)])


@torch.no_grad()
def prompt_states(backbone: Backbone, samples: Sequence[CaptionSample], with_audio: bool,
                  batch_size: int = 8, progress: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Last-token hidden states of each sample's prompt (see the module docstring).

    with_audio: feed the image and the spoken caption together; otherwise the image only.

    Returns:
        (states [L + 1, N, H], audio means [N, H]): with audio, the mean of each spoken
        caption's audio-adapter outputs (the unembedding ``audio`` feature) from the same pass;
        without, None.
    """
    if with_audio and backbone.omni is None:
        raise ValueError(f"{backbone.label} has no audio encoder; audio prompts need our model")
    processor, states, audio = backbone.processor, [], []
    desc = f"{backbone.name}: {'vision+audio' if with_audio else 'vision'} prompts"
    for batch in _batches(samples, batch_size, desc, progress):
        conversations = [s.conversation(with_audio) for s in batch]
        inputs = _on(processor.apply_chat_template(conversations, add_generation_prompt=True), backbone.device)
        if with_audio:
            with _AudioTokens(backbone.omni.audio_adapter) as tokens:
                hidden = backbone.forward(**inputs, output_hidden_states=True, use_cache=False).hidden_states
            audio.append(tokens.means((inputs["input_ids"] == processor.audio_token_id).sum(1).tolist()))
        else:
            hidden = backbone.forward(**inputs, output_hidden_states=True, use_cache=False).hidden_states
        states.append(_last_token_states(hidden, inputs["attention_mask"]))
    return _numpy(states, 1), (_numpy(audio, 0) if with_audio else None)


@torch.no_grad()
def caption_states(backbone: Backbone, samples: Sequence[CaptionSample], batch_size: int = 8,
                   progress: bool = True) -> np.ndarray:
    """Last-token hidden states of each caption fed alone (no template): [L + 1, N, H]."""
    out = []
    for batch in _batches(samples, batch_size, f"{backbone.name}: caption text", progress):
        enc = _captions(backbone, batch)
        hidden = backbone.vl(**enc, output_hidden_states=True, use_cache=False).hidden_states
        out.append(_last_token_states(hidden, enc["attention_mask"]))
    return _numpy(out, 1)


def extract_features(backbone: Backbone, samples: Sequence[CaptionSample], *, batch_size: int = 8,
                     with_audio: bool | None = None, progress: bool = True) -> ModelFeatures:
    """Both stages' features of one model.

    Args:
        backbone: the model (see :mod:`.backbones`).
        samples: the manifest's samples, in order.
        batch_size: samples per forward pass.
        with_audio: also extract the audio features; default: when the model has an audio path
            and every sample has a spoken caption.
        progress: show progress bars.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if with_audio is None:
        with_audio = backbone.has_audio and all(s.audio is not None for s in samples)
    kwargs = {"batch_size": batch_size, "progress": progress}
    features = ModelFeatures()
    features.unembedding["vision"] = vision_means(backbone, samples, **kwargs)
    features.unembedding["text"] = text_means(backbone, samples, **kwargs)
    features.embedding["vision"], _ = prompt_states(backbone, samples, with_audio=False, **kwargs)
    features.embedding["text"] = caption_states(backbone, samples, **kwargs)
    if with_audio:
        features.embedding["vision_audio"], features.unembedding["audio"] = prompt_states(
            backbone, samples, with_audio=True, **kwargs)
    return features
