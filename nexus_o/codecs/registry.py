"""Find a codec by name or folder: ``get_codec("builtin")``, ``load_codec("runs/codec")``.

Backends import lazily so that asking for one never loads the others' dependencies.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from nexus_o.codecs.base import SpeechCodec
from nexus_o.codecs.pretrained import read_config


def _builtin(path: str | Path | None = None, device: str | torch.device = "cpu") -> SpeechCodec:
    from nexus_o.codecs.builtin import BuiltinCodec, default_codec_dir

    directory = Path(path) if path is not None else default_codec_dir()
    if path is None and not directory.is_dir():
        raise FileNotFoundError(
            f"the default built-in codec is missing from {directory}; fit one with "
            "`nexus-o codec fit --audio DIR --out DIR` and pass path=DIR"
        )
    return BuiltinCodec.from_pretrained(directory, device=device)


def _firefly(
    checkpoint: str | Path | None = None,
    device: str | torch.device = "cpu",
    random_init: bool = False,
    seed: int = 0,
) -> SpeechCodec:
    from nexus_o.codecs.firefly import FireflyCodec

    if random_init:
        if checkpoint is not None:
            raise ValueError("get_codec('firefly'): pass either checkpoint= or random_init=True, not both")
        return FireflyCodec.random_init(seed=seed, device=str(device))
    if checkpoint is None:
        raise ValueError(
            "get_codec('firefly') needs checkpoint=PATH to fish-speech 1.4's "
            "firefly-gan-vq-fsq-8x1024-21hz-generator.pth (nothing is downloaded), or random_init=True"
        )
    checkpoint = Path(checkpoint)
    if checkpoint.is_dir():
        return FireflyCodec.from_pretrained(checkpoint, device=device)
    return FireflyCodec.from_checkpoint(checkpoint, device=device)


_FACTORIES: dict[str, Callable[..., SpeechCodec]] = {"builtin": _builtin, "firefly": _firefly}


def available_codecs() -> list[str]:
    """Names :func:`get_codec` accepts."""
    return sorted(_FACTORIES)


def get_codec(name: str, **kwargs: Any) -> SpeechCodec:
    """Build a codec by name.

    - ``"builtin"``: ``path=`` a saved built-in codec folder (default: the one shipped in the package),
      ``device=``.
    - ``"firefly"``: ``checkpoint=`` fish-speech's generator ``.pth`` or a saved folder, ``device=``;
      or ``random_init=True, seed=`` for untrained weights.

    Unknown names or keyword arguments raise errors that list what is accepted.
    """
    if name not in _FACTORIES:
        raise ValueError(f"unknown codec {name!r}; available: {available_codecs()}")
    factory = _FACTORIES[name]
    accepted = factory.__code__.co_varnames[: factory.__code__.co_argcount]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"get_codec({name!r}) got unknown arguments {unknown}; accepted: {list(accepted)}")
    return factory(**kwargs)


def load_codec(path: str | Path, device: str | torch.device = "cpu") -> SpeechCodec:
    """Load a codec from a folder written by ``save_pretrained`` (its config names the backend),
    or from a FireFly ``.pth``/``.ckpt``/``.safetensors`` checkpoint file."""
    path = Path(path)
    if path.is_file():
        return _firefly(checkpoint=path, device=device)
    name = read_config(path)["codec"]
    if name == "builtin":
        return _builtin(path=path, device=device)
    if name == "firefly":
        return _firefly(checkpoint=path, device=device)
    raise ValueError(f"{path}: unknown codec {name!r} in its config; available: {available_codecs()}")


def resolve_codec(name_or_dir: str, device: str | torch.device = "cpu") -> SpeechCodec:
    """A registered name (``builtin``) or an existing path: what the CLI's ``--codec`` accepts."""
    if name_or_dir in _FACTORIES and not Path(name_or_dir).exists():
        return get_codec(name_or_dir, device=device)
    if Path(name_or_dir).exists():
        return load_codec(name_or_dir, device=device)
    raise ValueError(f"--codec {name_or_dir!r} is neither a codec name {available_codecs()} nor an existing path")
