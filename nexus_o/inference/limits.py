"""Length limits checked before any model work: the prompt against the context, the reply against what is left.

`LengthLimits.of(model, max_prompt_tokens)` reads the LLM's context (its position count). Two checks:

- `check_text(text, tokenizer)`: a lower bound on the token count from the characters alone
  (no token covers more characters than the longest vocabulary entry), so that a megabyte of
  text is refused in microseconds instead of being tokenised first (seconds);
- `check(prompt_tokens, max_new_tokens)`: the exact count, media placeholders included, and
  the reply budget against what the context has left.

Both raise `ContextLengthError` (a `ValueError`) naming the numbers on both sides. The server,
`model.chat` and the eval runner all go through `nexus_o.inference.text.prepare_inputs`, which
calls them.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

_MAX_TOKEN_CHARS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# Without the tokenizer's own normaliser at hand, allow for Unicode composition shrinking the
# text: a canonical decomposition is at most 4 code points long.
_UNKNOWN_NORMALISER_FACTOR = 4


class ContextLengthError(ValueError):
    """A prompt (or prompt + reply budget) does not fit the model's context or the configured limit.

    Attributes:
        field: "prompt" (the prompt is too long) or "max_new_tokens" (the reply budget does not fit).
        tokens: the prompt's token count (a lower bound when `exact` is False).
        limit: the most the field may have.
        index: the conversation's position in a batch (None for a single one).
    """

    def __init__(self, message: str, *, field: str, tokens: int, limit: int, exact: bool = True,
                 index: int | None = None):
        super().__init__(message)
        self.field, self.tokens, self.limit, self.exact, self.index = field, tokens, limit, exact, index


def max_token_chars(tokenizer) -> int:
    """The most characters one token can cover: the longest vocabulary entry (cached per tokenizer).

    For byte-level BPE an entry's characters stand for bytes, and a byte is at most one character,
    so the bound holds there too.
    """
    try:
        return _MAX_TOKEN_CHARS[tokenizer]
    except (KeyError, TypeError):
        pass
    longest = max((len(token) for token in tokenizer.get_vocab()), default=1)
    try:
        _MAX_TOKEN_CHARS[tokenizer] = max(1, longest)
    except TypeError:  # not weak-referenceable: recompute next time
        pass
    return max(1, longest)


def _normalized_length(text: str, tokenizer) -> int:
    """Characters of `text` after the tokenizer's normaliser (which may compose characters)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return len(text) // _UNKNOWN_NORMALISER_FACTOR
    normalizer = backend.normalizer
    return len(text) if normalizer is None else len(normalizer.normalize_str(text))


def _where(index: int | None) -> str:
    return "" if index is None else f" (conversation {index} of the batch)"


@dataclass(frozen=True)
class LengthLimits:
    """context: positions of the LLM; max_prompt_tokens: an optional lower cap on the prompt."""

    context: int
    max_prompt_tokens: int | None = None

    def __post_init__(self):
        if self.context < 2:
            raise ValueError(f"context={self.context} must be at least 2 positions")
        if self.max_prompt_tokens is not None and self.max_prompt_tokens < 1:
            raise ValueError(f"max_prompt_tokens={self.max_prompt_tokens} must be positive")

    @classmethod
    def of(cls, model, max_prompt_tokens: int | None = None) -> "LengthLimits":
        """Limits of a `NexusOForConditionalGeneration` (its LLM's max_position_embeddings)."""
        return cls(int(model.config.text_config.max_position_embeddings), max_prompt_tokens)

    @property
    def prompt_limit(self) -> int:
        """The longest prompt accepted: one position is always left for the reply."""
        cap = self.context - 1
        return cap if self.max_prompt_tokens is None else min(cap, self.max_prompt_tokens)

    def _limit_words(self) -> str:
        said = f"this model's context of {self.context} tokens leaves at most {self.context - 1} for the prompt"
        if self.max_prompt_tokens is not None and self.max_prompt_tokens < self.context - 1:
            said = f"the configured max_prompt_tokens is {self.max_prompt_tokens} ({said})"
        return said

    def check_text(self, text: str, tokenizer, index: int | None = None) -> None:
        """Refuse `text` (a rendered prompt) when even its fewest possible tokens exceed the limit.

        Costs a pass of the tokenizer's normaliser at most, never a tokenisation.
        """
        per_token = max_token_chars(tokenizer)
        if len(text) <= self.prompt_limit * per_token:  # cannot be over: skip the normaliser too
            return
        fewest = -(-_normalized_length(text, tokenizer) // per_token)
        if fewest > self.prompt_limit:
            raise ContextLengthError(
                f"the prompt has at least {fewest} tokens ({len(text)} characters, at most {per_token} a token), "
                f"over the limit of {self.prompt_limit}: {self._limit_words()}{_where(index)}",
                field="prompt", tokens=fewest, limit=self.prompt_limit, exact=False, index=index)

    def check(self, prompt_tokens: int, max_new_tokens: int, index: int | None = None) -> None:
        """Refuse a prompt of `prompt_tokens` tokens, or a reply budget that does not fit after it."""
        if prompt_tokens > self.prompt_limit:
            raise ContextLengthError(
                f"the prompt has {prompt_tokens} tokens, over the limit of {self.prompt_limit}: "
                f"{self._limit_words()}{_where(index)}",
                field="prompt", tokens=prompt_tokens, limit=self.prompt_limit, index=index)
        room = self.room(prompt_tokens)
        if max_new_tokens > room:
            raise ContextLengthError(
                f"max_new_tokens={max_new_tokens} does not fit: the prompt takes {prompt_tokens} of this model's "
                f"{self.context} positions, leaving {room}{_where(index)}",
                field="max_new_tokens", tokens=prompt_tokens, limit=room, index=index)

    def check_sequence(self, tokens: int) -> None:
        """Refuse a whole sequence (prompt + a given reply, run in one forward pass) over the context."""
        if tokens > self.context:
            raise ContextLengthError(
                f"the conversation with its reply has {tokens} tokens, over this model's context of "
                f"{self.context}", field="prompt", tokens=tokens, limit=self.context)

    def room(self, prompt_tokens: int) -> int:
        """Positions left for the reply after a prompt of `prompt_tokens` tokens."""
        return max(0, self.context - prompt_tokens)
