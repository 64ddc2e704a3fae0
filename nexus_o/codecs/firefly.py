"""FireFly GAN (fish-speech 1.4), the codec NEXUS-O's speech decoder targets: 8 FSQ ids per 21.5 Hz frame.

Pipeline: 44.1 kHz audio -> 160-bin log-mel (hop 512) -> causal ConvNeXt encoder -> two stride-2
causal convs -> grouped FSQ (8 groups, levels [8, 5, 5, 5]: 1000 ids each) -> codes ``[B, 8, T']``;
decode mirrors the downsampling and a causal HiFi-GAN head upsamples x512 back to audio.
``frame_rate = 44100 / 512 / 4 ~ 21.53``.

Weights: the public ``firefly-gan-vq-fsq-8x1024-21hz-generator.pth`` loads with
:meth:`FireflyCodec.from_checkpoint` (``torch.load(weights_only=True)``, strict key match). The
decoder is causal, so streaming needs left context only (:func:`decoder_left_context`) and adds
no latency.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from nexus_o.codecs.base import SpeechCodec
from nexus_o.codecs.firefly_modules import ConvNeXtEncoder, DownsampleFSQ, HiFiGANHead
from nexus_o.codecs.mel import LogMelSpectrogram, MelConfig
from nexus_o.codecs.pretrained import read_config, write_config

WEIGHTS_NAME = "model.safetensors"


class CheckpointMismatchError(ValueError):
    """A checkpoint's keys or shapes do not fit the FireFly architecture built from the config."""


@dataclass(frozen=True)
class FireflyConfig:
    """Hyper-parameters of ``configs/firefly_gan_vq.yaml`` in fish-speech 1.4 (the defaults)."""

    sample_rate: int = 44100
    n_mels: int = 160
    n_fft: int = 2048
    hop_length: int = 512
    win_length: int = 2048
    backbone_depths: tuple[int, ...] = (3, 3, 9, 3)
    backbone_dims: tuple[int, ...] = (128, 256, 384, 512)
    backbone_kernel_size: int = 7
    upsample_rates: tuple[int, ...] = (8, 8, 2, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4, 4)
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    upsample_initial_channel: int = 512
    pre_conv_kernel_size: int = 13
    post_conv_kernel_size: int = 13
    n_groups: int = 8
    levels: tuple[int, ...] = (8, 5, 5, 5)
    downsample_factor: tuple[int, ...] = field(default=(2, 2))

    def __post_init__(self) -> None:
        if math.prod(self.upsample_rates) != self.hop_length:
            raise ValueError(f"prod(upsample_rates) {math.prod(self.upsample_rates)} != hop_length {self.hop_length}")

    @property
    def mel(self) -> MelConfig:
        """fish-speech's LogMelSpectrogram: reflect pad (win-hop)/2, sqrt(|X|^2 + 1e-6), log clamp 1e-5."""
        return MelConfig(
            sample_rate=self.sample_rate, n_fft=self.n_fft, win_length=self.win_length, hop_length=self.hop_length,
            n_mels=self.n_mels, fmin=0.0, fmax=None, padding="fish", magnitude_eps=1e-6, log_floor=1e-5,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FireflyConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown FireFly config keys {unknown}; known keys are {sorted(known)}")
        return cls(**{key: _as_tuples(value) for key, value in data.items()})


def _as_tuples(value: Any) -> Any:
    """JSON lists (possibly nested) back to the tuples the frozen config holds."""
    return tuple(_as_tuples(v) for v in value) if isinstance(value, list) else value


class FireflyGAN(nn.Module):
    """The three parts whose ``state_dict`` keys match the checkpoint: backbone, head, quantizer."""

    def __init__(self, config: FireflyConfig) -> None:
        super().__init__()
        self.backbone = ConvNeXtEncoder(
            config.n_mels, config.backbone_depths, config.backbone_dims, config.backbone_kernel_size
        )
        self.head = HiFiGANHead(
            num_mels=config.backbone_dims[-1], upsample_initial_channel=config.upsample_initial_channel,
            upsample_rates=config.upsample_rates, upsample_kernel_sizes=config.upsample_kernel_sizes,
            resblock_kernel_sizes=config.resblock_kernel_sizes, resblock_dilation_sizes=config.resblock_dilation_sizes,
            pre_conv_kernel_size=config.pre_conv_kernel_size, post_conv_kernel_size=config.post_conv_kernel_size,
        )
        self.quantizer = DownsampleFSQ(
            input_dim=config.backbone_dims[-1], n_groups=config.n_groups, levels=config.levels,
            downsample_factor=config.downsample_factor,
        )


def decoder_left_context(config: FireflyConfig) -> int:
    """Code frames before a frame that can change its audio (upper bound; the decoder is causal).

    Sums each causal layer's reach, in code frames: a conv reaches ``dilation * (kernel - 1)``
    samples back, a transposed conv ``ceil((kernel - 1) / stride)`` input samples; a sample at a
    level with ``r`` samples per code frame is ``1 / r`` frames. 17 for the 1.4 config.
    """
    reach, rate = 0.0, 1
    for factor in reversed(config.downsample_factor):  # quantizer upsampling: transposed conv + ConvNeXt
        reach += math.ceil((factor - 1) / factor) / rate
        rate *= factor
        reach += (config.backbone_kernel_size - 1) / rate
    reach += (config.pre_conv_kernel_size - 1) / rate
    for stride, kernel in zip(config.upsample_rates, config.upsample_kernel_sizes):
        reach += math.ceil((kernel - 1) / stride) / rate
        rate *= stride
        reach += max(
            sum(2 * (k - 1) * d for d in dilations)
            for k, dilations in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes)
        ) / rate
    reach += (config.post_conv_kernel_size - 1) / rate
    return math.ceil(reach)


def load_checkpoint_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a FireFly checkpoint (``.pth``/``.ckpt`` via ``torch.load(weights_only=True)``, or
    ``.safetensors``), unwrapped from a Lightning ``state_dict`` and its ``generator.`` prefix."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FireFly checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises several types for foreign or corrupt files
            raise CheckpointMismatchError(f"{path}: not a readable tensor checkpoint ({err})") from err
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointMismatchError(f"{path}: expected a dict of tensors, got {type(state).__name__}")
    if any(k.startswith("generator.") for k in state):
        state = {k.removeprefix("generator."): v for k, v in state.items() if k.startswith("generator.")}
    return state


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Raise :class:`CheckpointMismatchError` listing missing, unexpected and mis-shaped keys."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(state))
        if tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or shapes:
        def listing(title: str, items: list[str]) -> str:
            shown = "\n  ".join(items[:20]) + (f"\n  ... and {len(items) - 20} more" if len(items) > 20 else "")
            return f"{title} ({len(items)}):\n  {shown}\n" if items else ""

        raise CheckpointMismatchError(
            f"{source} does not match the FireFly architecture:\n"
            + listing("missing keys", missing) + listing("unexpected keys", unexpected)
            + listing("shape mismatches", shapes)
        )


class FireflyCodec(SpeechCodec):
    """fish-speech 1.4 FireFly GAN behind the codec interface."""

    name = "firefly"

    def __init__(self, model: FireflyGAN, config: FireflyConfig, device: str | torch.device = "cpu") -> None:
        self.config = config
        self.model = model.eval().requires_grad_(False).to(device)
        self.mel = LogMelSpectrogram(config.mel).to(device)
        self.sample_rate = config.sample_rate
        self.samples_per_frame = config.hop_length * math.prod(config.downsample_factor)
        self.num_codebooks = config.n_groups
        self.codebook_size = math.prod(config.levels)
        self.left_context = decoder_left_context(config)
        self.right_context = 0

    @classmethod
    def random_init(cls, config: FireflyConfig | None = None, seed: int = 0, device: str = "cpu") -> FireflyCodec:
        """Untrained weights (for tests and shape checks): it runs, it does not sound like speech."""
        config = config or FireflyConfig()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = FireflyGAN(config)
        return cls(model, config, device)

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, config: FireflyConfig | None = None, device: str | torch.device = "cpu"
    ) -> FireflyCodec:
        """Load fish-speech's generator checkpoint (e.g. ``firefly-gan-vq-fsq-8x1024-21hz-generator.pth``)."""
        config = config or FireflyConfig()
        state = {k: v.float() if v.is_floating_point() else v for k, v in load_checkpoint_state(path).items()}
        with torch.device("meta"):
            model = FireflyGAN(config)
        check_state_dict(model, state, str(path))
        model.load_state_dict(state, strict=True, assign=True)
        return cls(model, config, device)

    def modules(self) -> Iterator[nn.Module]:
        yield self.model
        yield self.mel

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        return self.model.quantizer.encode(self.model.backbone(self.mel(wav)))

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.head(self.model.quantizer.decode(codes))

    def save_pretrained(self, directory: str | Path) -> None:
        directory = write_config(directory, {"codec": self.name, "config": self.config.to_dict()})
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_NAME))

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> FireflyCodec:
        config = FireflyConfig.from_dict(read_config(directory, codec=cls.name, known_keys={"config"})["config"])
        return cls.from_checkpoint(Path(directory) / WEIGHTS_NAME, config, device)
