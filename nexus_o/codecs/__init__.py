"""Speech codecs behind one interface (built-in mel-RVQ + HiFi-GAN, FireFly GAN).

    codec = get_codec("builtin")            # or load_codec("runs/my_codec"), get_codec("firefly", checkpoint=...)
    codes = codec.encode(wav, sample_rate=16000)   # [B, 1, T] -> [B, K, T'] long
    wav = codec.decode(codes)                       # [B, K, T'] -> [B, 1, T' * samples_per_frame]
"""

from nexus_o.codecs.base import (
    CodecError,
    CodecMismatchError,
    DecodeState,
    SpeechCodec,
    check_codec_matches,
)
from nexus_o.codecs.registry import available_codecs, get_codec, load_codec, resolve_codec

__all__ = [
    "CodecError",
    "CodecMismatchError",
    "DecodeState",
    "SpeechCodec",
    "available_codecs",
    "check_codec_matches",
    "get_codec",
    "load_codec",
    "resolve_codec",
]
