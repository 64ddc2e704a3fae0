"""Config of the autoregressive speech decoder (paper §3.1), in the Hugging Face format.

No `from __future__ import annotations` here on purpose: `@strict` checks field types from the
live annotations, and string annotations would switch that check off.

Code ids. Each of the `num_codebooks` tables has `codebook_size` rows: ids `0 .. codec_entries-1`
are real codec entries, the ids above hold three specials (defaults in brackets, for 1024/1000):

- `start_id` (codebook_size - 1 = 1023): fed on every codebook at the first step; the mean of
  its K embeddings is the learned start embedding of the paper.
- `pad_id` (codebook_size - 2 = 1022): the holes of the delay pattern (codebook k before step k,
  and after its end); never a training target, never sampled, forced during generation.
- `end_id` (codebook_size - 3 = 1021): the frame after the last real frame is all `end_id`, so
  codebook k emits it at step T + k. Generation stops when codebook 0 emits it; the other
  codebooks then finish their delayed frames and get `end_id` / `pad_id` forced.
"""

from typing import ClassVar

from huggingface_hub.dataclasses import strict

from nexus_o.models.configuration import _StrictConfig

ALIGNMENTS = ("prefix", "stepwise", "pointer")


@strict
class SpeechDecoderConfig(_StrictConfig):
    """The AR speech decoder: a decoder-only transformer over delayed codec frames.

    num_layers / hidden_size / num_heads / intermediate_size: the transformer (pre-norm blocks,
        RMSNorm, GELU MLP, rotary positions with base `rope_theta`: no length limit is baked
        into the weights, and the text prefix of the "prefix" alignment takes positions too).
    num_codebooks / codebook_size: K code tables and K output heads of `codebook_size` logits.
    codec_entries: real codec entries per codebook (FireFly FSQ: 1000); see the module doc.
    llm_hidden_size: width of the LLM hidden states that condition the decoder.
    add_token_embeddings: condition on the reply tokens' last hidden states plus their input
        embeddings (as Qwen2.5-Omni's talker reads both). A last hidden state is shaped to
        predict the next token, so in a small LLM it can carry little of the token it sits on;
        the embedding keeps what is to be said. Both are scaled to unit RMS before the sum.
        False: the hidden states alone.
    max_steps: default cap on the delayed steps of one generation (frames + K - 1).
    alignment: how LLM states meet audio steps. "prefix": the reply's LLM states are a causal
        prefix of the decoder sequence and every step adds the last one; "stepwise": no prefix,
        step t adds the state of text token min(t // steps_per_token, N - 1).
        "pointer": the prefix as in "prefix", and step t adds the state of the token being spoken
        at frame t (and, projected, the next token's): a pointer that starts on the first token
        and moves one token on when the advance head says the next frame starts the next token. Training reads the pointer off
        the targets' word timings; generation moves it itself.
    steps_per_token: audio steps per text token in the "stepwise" alignment.
    advance_loss_weight: weight of the advance head's binary cross-entropy ("pointer" only).
    streaming: speak while the text is written (see `nexus_o.models.speech_schedule`): step s
        reads only the reply tokens up to `lookahead` past where speech has got (the pointer for
        "pointer", s // steps_per_token otherwise), in training exactly as in generation, so
        generation starts once the first `lookahead` reply tokens exist. False: the paper's
        text-then-speech (every step sees the whole reply; the default of checkpoints saved
        before this key existed). The presets stream.
    lookahead: reply tokens the decoder may read past its progress when streaming (>= 1; >= 2
        for "pointer", whose steps read the token after the pointer too).
    """

    model_type = "nexus_o_speech_decoder"
    base_config_key = "speech_decoder_config"
    num_specials: ClassVar[int] = 3

    num_layers: int = 6
    hidden_size: int = 1024
    num_heads: int = 16
    intermediate_size: int = 4096
    num_codebooks: int = 8
    codebook_size: int = 1024
    codec_entries: int = 1000
    llm_hidden_size: int = 3584
    max_steps: int = 2048
    alignment: str = "prefix"
    steps_per_token: int = 4
    advance_loss_weight: float = 1.0
    streaming: bool = False
    lookahead: int = 3
    dropout: float = 0.0
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    add_token_embeddings: bool = True
    start_id: int | None = None
    pad_id: int | None = None
    end_id: int | None = None

    def __post_init__(self, **kwargs):
        # Specials default to the top three ids; explicit values (a converted checkpoint) are kept.
        for offset, name in enumerate(("start_id", "pad_id", "end_id"), start=1):
            if getattr(self, name) is None:
                setattr(self, name, self.codebook_size - offset)
        super().__post_init__(**kwargs)
        self.check()

    def check(self) -> None:
        """Raise `ValueError` naming the field when a value cannot build a decoder."""
        for name in ("num_layers", "hidden_size", "num_heads", "intermediate_size", "num_codebooks",
                     "codec_entries", "llm_hidden_size", "max_steps", "steps_per_token"):
            if getattr(self, name) < 1:
                raise ValueError(f"speech_decoder_config.{name}={getattr(self, name)} must be >= 1")
        if self.hidden_size % self.num_heads or (self.hidden_size // self.num_heads) % 2:
            raise ValueError(f"speech_decoder_config.hidden_size={self.hidden_size} must split into "
                             f"num_heads={self.num_heads} heads of even width (rotary positions)")
        if self.alignment not in ALIGNMENTS:
            raise ValueError(f"speech_decoder_config.alignment={self.alignment!r}; choose one of {ALIGNMENTS}")
        if self.lookahead < (2 if self.alignment == "pointer" else 1):
            raise ValueError(f"speech_decoder_config.lookahead={self.lookahead} must be >= 1 "
                             f"(>= 2 with alignment='pointer', whose steps read the next token too)")
        if self.advance_loss_weight < 0:
            raise ValueError(f"speech_decoder_config.advance_loss_weight={self.advance_loss_weight} must be >= 0")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"speech_decoder_config.dropout={self.dropout} must be in [0, 1)")
        if self.codebook_size < self.codec_entries + self.num_specials:
            raise ValueError(f"speech_decoder_config.codebook_size={self.codebook_size} leaves no room for "
                             f"{self.num_specials} special ids above codec_entries={self.codec_entries}")
        specials = {"start_id": self.start_id, "pad_id": self.pad_id, "end_id": self.end_id}
        for name, value in specials.items():
            if not self.codec_entries <= value < self.codebook_size:
                raise ValueError(f"speech_decoder_config.{name}={value} must lie in "
                                 f"[codec_entries={self.codec_entries}, codebook_size={self.codebook_size})")
        if len(set(specials.values())) != len(specials):
            raise ValueError(f"speech_decoder_config special ids must differ, got {specials}")
        if self.max_steps < self.num_codebooks:
            raise ValueError(f"speech_decoder_config.max_steps={self.max_steps} is below "
                             f"num_codebooks={self.num_codebooks}: not even one frame fits")
