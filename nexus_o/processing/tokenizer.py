"""The tiny preset's tokenizer: a byte-level BPE trained locally with `tokenizers`, no download.

It carries the same special tokens as Qwen2.5-VL (chat, vision) plus the audio tokens that
`from_components` adds to a real Qwen2.5-VL tokenizer, so the same chat template and the same
processor code serve both sizes. Training is deterministic and takes a fraction of a second.
"""

from __future__ import annotations

from functools import lru_cache

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

CHAT_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
VISION_TOKENS = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
AUDIO_TOKENS = ["<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>"]  # Qwen2.5-Omni's names
AUDIO_BOS, AUDIO_PAD, AUDIO_EOS = AUDIO_TOKENS

_COLOURS = "red green blue yellow purple orange black white grey pink brown cyan"
_SHAPES = "circle square triangle star diamond cross heart hexagon"
_DIGITS = "zero one two three four five six seven eight nine ten 0 1 2 3 4 5 6 7 8 9"
_WORDS = (
    "the a an is are was what which how many where who there this that it of in on to and or "
    "colour color shape digit number picture image say said says repeat transcribe translate "
    "speech audio answer question please tell me you can could hey hello yes no left right top "
    "bottom above below next big small I see hear spoken caption describe emotion happy sad angry "
    "neutral calm surprised assistant user system helpful"
)
_ZH = "红 绿 蓝 黄 紫 橙 黑 白 圆 方 三角 星 数字 图片 颜色 形状 这 是 什么 几 个 请 说 一 二 三 四 五 六 七 八 九 十"


def _corpus() -> list[str]:
    words = " ".join([_COLOURS, _SHAPES, _DIGITS, _WORDS])
    lines = [words, words.title(), words.upper(), _ZH]
    # Each word alone too, as a reply starts: "two" then becomes one token, not "t" + "wo" (a
    # speech decoder reading one token at a time cannot tell "two" from "three" by its "t").
    lines += [w for w in words.split() for _ in range(2)]
    lines += [f"What {c} shape is in the picture? It is a {c} {s}." for c in _COLOURS.split()
              for s in _SHAPES.split()]
    lines += [f"The digit is {d}." for d in _DIGITS.split()]
    return lines


@lru_cache(maxsize=4)
def _trained(vocab_size: int, with_audio: bool) -> str:
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=CHAT_TOKENS + VISION_TOKENS + (AUDIO_TOKENS if with_audio else []),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return tok.to_str()


def build_tiny_tokenizer(vocab_size: int = 1024, with_audio: bool = True) -> PreTrainedTokenizerFast:
    """A fresh tiny tokenizer (special tokens first: ids 0..9), left padding for generation.

    with_audio=False leaves out the audio tokens, as in a Qwen2.5-VL tokenizer (for tests of
    `add_audio_tokens` / `from_components`).
    """
    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_trained(vocab_size, with_audio)),
        eos_token="<|im_end|>", pad_token="<|endoftext|>", padding_side="left",
        extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                              "vision_bos_token": "<|vision_start|>", "vision_eos_token": "<|vision_end|>",
                              **({"audio_token": AUDIO_PAD, "audio_bos_token": AUDIO_BOS,
                                  "audio_eos_token": AUDIO_EOS} if with_audio else {})})
    return tok


def add_audio_tokens(tokenizer) -> dict[str, int]:
    """Add the audio special tokens to a (Qwen2.5-VL) tokenizer if missing; return their ids."""
    missing = [t for t in AUDIO_TOKENS if t not in tokenizer.get_added_vocab()]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing},
                                     replace_extra_special_tokens=False)
    ids = tokenizer.convert_tokens_to_ids(AUDIO_TOKENS)
    return {"audio_start_token_id": ids[0], "audio_token_id": ids[1], "audio_end_token_id": ids[2]}
