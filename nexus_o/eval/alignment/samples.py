"""Image-caption manifests for the alignment analysis: one image, its caption, maybe its spoken caption.

The manifest is the data layer's JSONL (see :mod:`nexus_o.data.schema`), one sample a line::

    {"messages": [{"role": "user", "content": "<image><audio>"},
                  {"role": "assistant", "content": "a red circle"}],
     "images": ["images/0.png"], "audios": ["speech/0.wav"]}

- the last message is the assistant's: its text is the caption (the language side);
- the messages before it are the prompt; they hold exactly one ``<image>`` tag and, when the
  sample has a spoken caption, one ``<audio>`` tag (both may sit among other prompt text, and a
  system message may come first);
- ``audios`` is optional, but all-or-none: either every sample has a spoken caption or none
  does (a mix makes the vision+audio pairs undefined, so it is an error naming the line);
- videos are not accepted. Relative paths resolve against the manifest's folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nexus_o.data.manifest import ManifestError, read_manifest
from nexus_o.data.schema import Sample
from nexus_o.eval.alignment.inputs import AlignmentInputError
from nexus_o.eval.alignment.options import MetricOptions


@dataclass(frozen=True)
class CaptionSample:
    """One image-caption(-speech) triple of a manifest.

    Attributes:
        line: the manifest line it came from (for messages).
        prompt: the messages before the caption, with string contents (``<image>``/``<audio>`` tags).
        image: absolute path (or data URI) of the image.
        caption: the caption text.
        audio: absolute path (or data URI) of the spoken caption, or None.
    """

    line: int
    prompt: tuple[dict, ...]
    image: str
    caption: str
    audio: str | None

    def conversation(self, with_audio: bool) -> dict:
        """The prompt as a processor conversation: image only, or image and spoken caption.

        Without audio the ``<audio>`` tag is dropped from the prompt text, so the two
        conversations differ only by the spoken caption.
        """
        if not with_audio:
            messages = [dict(m, content=m["content"].replace("<audio>", "")) for m in self.prompt]
            return {"messages": messages, "images": [self.image]}
        if self.audio is None:
            raise ValueError(f"manifest line {self.line} has no spoken caption")
        return {"messages": list(self.prompt), "images": [self.image], "audios": [self.audio]}


def _caption_sample(sample: Sample, path: Path, line: int) -> CaptionSample:
    """Check one validated manifest sample against the shape in the module docstring."""
    if sample.videos:
        raise ManifestError(path, line, "videos are not used by the alignment analysis; give one image")
    if len(sample.images) != 1:
        raise ManifestError(path, line, f"expected exactly one image, got {len(sample.images)}")
    if len(sample.audios) > 1:
        raise ManifestError(path, line, f"expected at most one spoken caption in 'audios', got {len(sample.audios)}")
    *prompt, last = sample.messages
    if last.role != "assistant":
        raise ManifestError(path, line, f"the last message must be the assistant's caption, got role {last.role!r}")
    caption = str(last.content).strip()
    if not caption:
        raise ManifestError(path, line, "the caption (last assistant message) is empty")
    if "<image>" in caption or "<audio>" in caption:
        raise ManifestError(path, line, "media tags belong in the prompt, not in the caption (last message)")
    if not any(m.role == "user" for m in prompt):
        raise ManifestError(path, line, "no user message before the caption to hold the <image> tag")
    return CaptionSample(
        line=line,
        prompt=tuple({"role": m.role, "content": str(m.content)} for m in prompt),
        image=sample.images[0],
        caption=caption,
        audio=sample.audios[0] if sample.audios else None,
    )


def read_caption_manifest(path: str | Path, limit: int | None = None) -> list[CaptionSample]:
    """The first ``limit`` (default: all) samples of an image-caption manifest.

    Media files must exist (they are decoded later, when the batch is built).

    Raises:
        FileNotFoundError: the manifest is missing.
        ManifestError: a line breaks the data layer's schema or the shape above (names the line).
        AlignmentInputError: the manifest has no samples, or mixes samples with and without
            a spoken caption.
    """
    path = Path(path)
    if limit is not None and limit < 1:
        raise AlignmentInputError(f"limit must be a positive number of samples, got {limit}")
    samples: list[CaptionSample] = []
    for line, sample in read_manifest(path, on_error="raise", media="exists"):
        samples.append(_caption_sample(sample, path, line))
        if limit is not None and len(samples) == limit:
            break
    if not samples:
        raise AlignmentInputError(f"{path}: the manifest holds no samples")
    with_audio = [s.audio is not None for s in samples]
    if any(with_audio) and not all(with_audio):
        odd = samples[with_audio.index(not with_audio[0])]
        raise AlignmentInputError(
            f"{path}:{odd.line}: {'has' if odd.audio else 'lacks'} a spoken caption while line {samples[0].line} "
            f"{'has' if samples[0].audio else 'lacks'} one; give every sample a spoken caption, or none"
        )
    return samples


def samples_needed(topk: int, options: MetricOptions) -> int:
    """Fewest samples the seven metrics accept: topk neighbours besides each sample, N >= 4 for
    the unbiased HSIC of cknna, and N >= cca_dim for svcca."""
    return max(topk + 1, 4, options.cca_dim)


def check_enough_samples(n: int, topk: int, options: MetricOptions, source: str) -> None:
    """Fail before any model runs when ``n`` samples cannot be scored.

    Raises:
        AlignmentInputError: naming the count, topk, cca_dim and how many samples are needed.
    """
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 2:
        raise AlignmentInputError(f"topk must be an integer >= 2 (cknna needs at least 2 neighbours), got {topk!r}")
    needed = samples_needed(topk, options)
    if n < needed:
        raise AlignmentInputError(
            f"{source} gives {n} sample(s), but topk={topk} with svcca's cca_dim={options.cca_dim} needs at "
            f"least {needed} (N > topk, N >= cca_dim, N >= 4); add samples, raise --limit or lower --topk"
        )
