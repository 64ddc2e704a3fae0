"""Which reply token is spoken at each codec frame: the targets of the "pointer" alignment.

A stage-3 target may carry word timings (`speech.words`, the shape of Whisper's word
timestamps: `{"word", "start", "end"}` in seconds). `token_frame_index` turns them, with the
reply's tokens (character spans from the tokenizer), into one token index per codec frame:

- each token belongs to the word it overlaps most (a token touching no word, such as
  punctuation, joins the word before it);
- word j owns the frames from its start to the next word's start (the pause after a word is
  still that word; the first word also owns the lead-in silence, the last the tail);
- a word's frames are shared among its tokens in proportion to their lengths in characters.

Without timings the whole target is shared among all tokens by characters: right for one-word
replies, a rough guess for longer ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


class WordAlignmentError(ValueError):
    """Word timings that do not fit the reply text."""


def _word_spans(reply: str, words: Sequence[Mapping]) -> list[tuple[int, int]]:
    """Character span of each timed word, found left to right in the reply (case-insensitive)."""
    spans, cursor, lowered = [], 0, reply.lower()
    for j, word in enumerate(words):
        text = str(word["word"]).strip()
        at = lowered.find(text.lower(), cursor)
        if not text or at < 0:
            raise WordAlignmentError(f"speech.words[{j}] {text!r} is not in the reply text {reply!r} after "
                                     f"character {cursor}")
        spans.append((at, at + len(text)))
        cursor = at + len(text)
    return spans


def _share(frames: int, weights: Sequence[int]) -> list[int]:
    """Split `frames` into len(weights) whole parts proportional to `weights` (each >= 1 if possible)."""
    weights = np.maximum(np.asarray(weights, dtype=np.float64), 1.0)
    edges = np.round(np.cumsum(weights) / weights.sum() * frames).astype(int)
    parts = np.diff(np.concatenate([[0], edges]))
    return parts.tolist()


def token_frame_index(reply: str, token_spans: Sequence[tuple[int, int]], frames: int, frame_rate: float,
                      words: Sequence[Mapping] | None = None) -> np.ndarray:
    """The reply token spoken at each frame.

    reply: the spoken text; token_spans: (start, end) characters of each reply token, in order;
    frames: codec frames of the target; frame_rate: frames a second; words: timings or None.
    Returns int64 [frames], non-decreasing, in [0, len(token_spans)).
    """
    n = len(token_spans)
    if n == 0:
        raise WordAlignmentError(f"the reply {reply!r} has no tokens to speak")
    if frames < 1:
        raise WordAlignmentError("the speech target has no frame")
    lengths = [max(end - start, 1) for start, end in token_spans]
    if not words:
        index = np.repeat(np.arange(n), _share(frames, lengths)).astype(np.int64)
        index[-1] = n - 1
        return index
    spans = _word_spans(reply, words)
    owner, last = [], 0
    for start, end in token_spans:
        overlaps = [max(0, min(end, b) - max(start, a)) for a, b in spans]
        best = int(np.argmax(overlaps))
        last = best if overlaps[best] > 0 else last
        owner.append(max(last, owner[-1]) if owner else last)  # keep tokens in word order
    starts = [0] + [min(frames, max(0, round(float(w["start"]) * frame_rate))) for w in words[1:]]
    bounds = np.maximum.accumulate(np.array(starts + [frames]))
    index = np.empty(frames, dtype=np.int64)
    for j in range(len(words)):
        tokens = [i for i, o in enumerate(owner) if o == j]
        lo, hi = int(bounds[j]), int(bounds[j + 1])
        if not tokens:  # a word inside another word's token: its frames stay with the token before
            index[lo:hi] = index[lo - 1] if lo > 0 else 0
            continue
        index[lo:hi] = np.repeat(tokens, _share(hi - lo, [lengths[i] for i in tokens]))
    index[-1] = n - 1  # the decoder may only end on the last token, so the target always gets there
    return index
