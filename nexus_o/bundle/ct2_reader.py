"""Read CTranslate2's `model.bin` without CTranslate2: header, variables, aliases; nothing executed.

Layout (little-endian), as `ctranslate2/specs/model_spec.py` writes it and `src/models/model.cc`
reads it; a string is a uint16 length (NUL included), the UTF-8 bytes and the NUL:

    uint32 binary_version                        (1..6)
    string spec_name; uint32 spec_revision        (binary_version >= 2)
    uint32 num_variables, then per variable:
        string name; uint8 rank; uint32 dims[rank]
        v >= 4: uint8 dtype_id (float32, int8, int16, int32, float16, bfloat16); uint32 num_bytes
        v <  4: uint8 item_size (4 float32, 2 int16, 1 int8); uint32 num_items
        raw data
    uint32 num_aliases, then (string alias, string target) pairs   (binary_version >= 3)

Quantised weights are int8 (one float32 scale per output row, `<name>_scale`) or int16 (one scalar
scale); value = quantised / scale. An alias also stands for its target's `_scale`.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

MAX_BINARY_VERSION = 6
# CTranslate2's DataType enum order (include/ctranslate2/types.h); bfloat16 is read as raw uint16.
_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_NUMPY = {"float32": np.float32, "int8": np.int8, "int16": np.int16, "int32": np.int32,
          "float16": np.float16, "bfloat16": np.uint16}
_LEGACY_ITEM_SIZES = {4: "float32", 2: "int16", 1: "int8"}
# Scale CTranslate2 assumes for int16 weights saved without one (ops::Quantize::global_int16_scale).
_LEGACY_INT16_SCALE = 1000.0
CT2Source = str | Path | Sequence[str | Path]


class CT2FormatError(ValueError):
    """A model.bin that is truncated, corrupt or of an unsupported version."""


@dataclass(frozen=True)
class CT2Variable:
    """One stored variable: `dtype` is CTranslate2's name; `data` holds the raw values, shaped."""

    dtype: str
    data: np.ndarray


@dataclass
class CT2Model:
    """Everything a model.bin holds. `variables` excludes aliases; `aliases` maps alias -> target."""

    path: str
    binary_version: int
    spec: str
    revision: int
    variables: dict[str, CT2Variable] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def resolve(self, name: str) -> str:
        """The stored name behind `name` (itself, an alias target, or the scale of one)."""
        if name in self.variables:
            return name
        if name in self.aliases:
            return self.aliases[name]
        if name.endswith("_scale") and name[: -len("_scale")] in self.aliases:
            return self.aliases[name[: -len("_scale")]] + "_scale"
        raise KeyError(f"{self.path}: no variable {name!r} (spec {self.spec})")

    def __contains__(self, name: str) -> bool:
        try:
            return self.resolve(name) in self.variables
        except KeyError:
            return False

    def raw(self, name: str) -> CT2Variable:
        """The stored variable behind `name`, aliases followed, not dequantised."""
        return self.variables[self.resolve(name)]

    def scalar(self, name: str) -> int | float:
        """A rank-0 variable (e.g. `encoder/num_heads`) as a Python number."""
        var = self.raw(name)
        if var.data.ndim != 0:
            raise CT2FormatError(f"{self.path}: {name} has shape {var.data.shape}, expected a scalar")
        return self.tensor(name).item()

    def tensor(self, name: str) -> torch.Tensor:
        """Variable `name` as float32 (or its integer type if not a float weight), dequantised."""
        var = self.raw(name)
        if var.dtype == "bfloat16":  # the high half of a float32's bits
            return torch.from_numpy(var.data.astype(np.uint32) << 16).view(torch.float32)
        if var.dtype == "float16":
            return torch.from_numpy(var.data.astype(np.float32))
        scale_name = name + "_scale"
        if var.dtype == "int8" and var.data.ndim >= 2:
            if scale_name not in self:
                raise CT2FormatError(f"{self.path}: int8 weight {name} has no {scale_name}")
            scale = self.tensor(scale_name).reshape(-1, 1)
            rows = torch.from_numpy(var.data.astype(np.float32)).reshape(var.data.shape[0], -1)
            if scale.shape[0] not in (1, rows.shape[0]):
                raise CT2FormatError(f"{self.path}: {scale_name} has {scale.shape[0]} scales for "
                                     f"{rows.shape[0]} rows of {name}")
            return (rows / scale).reshape(var.data.shape)
        if var.dtype == "int16" and var.data.ndim >= 2:
            scale = self.tensor(scale_name).item() if scale_name in self else _LEGACY_INT16_SCALE
            return torch.from_numpy(var.data.astype(np.float32)) / scale
        return torch.from_numpy(var.data.copy())

    def names(self) -> list[str]:
        """Every readable name: stored variables and aliases, sorted."""
        return sorted([*self.variables, *self.aliases])


class _ChainedReader:
    """Sequential reads over one file or several parts read back to back, tracking the offset."""

    def __init__(self, parts: Sequence[Path]):
        self.parts = [Path(p) for p in parts]
        for p in self.parts:
            if not p.is_file():
                raise FileNotFoundError(f"CTranslate2 model file not found: {p}")
        self.label = " + ".join(str(p) for p in self.parts)
        self.size = sum(os.path.getsize(p) for p in self.parts)
        self.offset = 0
        self._index = 0
        self._file = open(self.parts[0], "rb")

    def close(self) -> None:
        self._file.close()

    def read(self, n: int, what: str) -> bytearray:
        if self.offset + n > self.size:
            raise CT2FormatError(f"{self.label} is truncated: reading {what} ({n} bytes) at offset "
                                 f"{self.offset}, but the file ends at {self.size}")
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            k = self._file.readinto(view[got:])
            if not k:  # end of this part: continue in the next one
                self._file.close()
                self._index += 1
                self._file = open(self.parts[self._index], "rb")
                continue
            got += k
        self.offset += n
        return buf

    def unpack(self, fmt: str, what: str):
        return struct.unpack("<" + fmt, self.read(struct.calcsize("<" + fmt), what))

    def string(self, what: str) -> str:
        start = self.offset
        (length,) = self.unpack("H", f"length of {what}")
        raw = self.read(length, what)
        if length == 0 or raw[-1] != 0:
            raise CT2FormatError(f"{self.label}: {what} at offset {start} is not a NUL-terminated string")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError as err:
            raise CT2FormatError(f"{self.label}: {what} at offset {start} is not UTF-8") from err


def ct2_side_dir(source: CT2Source) -> Path:
    """The folder of a model's side files (config.json, vocabulary.txt): the model folder, the
    model.bin's folder, or the first part's folder."""
    if isinstance(source, (str, Path)):
        return Path(source) if Path(source).is_dir() else Path(source).parent
    return Path(source[0]).parent


def read_ct2_side_files(folder: Path) -> tuple[dict[str, int], dict]:
    """(token -> id from vocabulary.txt or .json, config.json as a dict) of a CT2 model folder;
    empty where a file is absent."""
    vocab: list[str] = []
    if (folder / "vocabulary.txt").is_file():
        vocab = (folder / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
    elif (folder / "vocabulary.json").is_file():
        vocab = json.loads((folder / "vocabulary.json").read_text(encoding="utf-8"))
    config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
    return {t: i for i, t in enumerate(vocab)}, config


def read_ct2_model(source: CT2Source) -> CT2Model:
    """Parse a CTranslate2 model.bin.

    Args:
        source: a model folder (its model.bin), a model.bin file, or the ordered parts of a
            model.bin split into several files (read as if concatenated).

    Returns:
        A `CT2Model` whose variables hold the raw stored arrays (dequantise with `tensor`).
    """
    if isinstance(source, (str, Path)):
        source = Path(source)
        parts = [source / "model.bin" if source.is_dir() else source]
    else:
        parts = [Path(p) for p in source]
        if not parts:
            raise ValueError("read_ct2_model: no model.bin parts given")
    reader = _ChainedReader(parts)
    try:
        return _parse(reader)
    finally:
        reader.close()


def _parse(r: _ChainedReader) -> CT2Model:
    (version,) = r.unpack("I", "binary version")
    if not 1 <= version <= MAX_BINARY_VERSION:
        raise CT2FormatError(f"{r.label}: binary version {version} is not a CTranslate2 model.bin "
                             f"this reader knows (1..{MAX_BINARY_VERSION})")
    spec, revision = "", 1
    if version >= 2:
        spec = r.string("spec name")
        (revision,) = r.unpack("I", "spec revision")
    model = CT2Model(str(r.label), version, spec, revision)
    (count,) = r.unpack("I", "variable count")
    for i in range(count):
        name = r.string(f"name of variable {i}")
        (rank,) = r.unpack("B", f"rank of {name}")
        shape = r.unpack(f"{rank}I", f"shape of {name}") if rank else ()
        if version >= 4:
            dtype_id, num_bytes = r.unpack("BI", f"dtype and size of {name}")
            if dtype_id >= len(_DTYPES):
                raise CT2FormatError(f"{r.label}: variable {name} has unknown dtype id {dtype_id}")
            dtype = _DTYPES[dtype_id]
        else:
            item_size, num_items = r.unpack("BI", f"dtype and size of {name}")
            if item_size not in _LEGACY_ITEM_SIZES:
                raise CT2FormatError(f"{r.label}: variable {name} has unknown item size {item_size}")
            dtype, num_bytes = _LEGACY_ITEM_SIZES[item_size], num_items * item_size
        np_dtype = np.dtype(_NUMPY[dtype])
        expected = int(np.prod(shape, dtype=np.int64)) * np_dtype.itemsize
        if num_bytes != expected:
            raise CT2FormatError(f"{r.label}: variable {name} of shape {list(shape)} and dtype {dtype} "
                                 f"declares {num_bytes} bytes, expected {expected} (offset {r.offset})")
        data = np.frombuffer(r.read(num_bytes, f"data of {name}"), dtype=np_dtype).reshape(shape)
        model.variables[name] = CT2Variable(dtype, data)
    if version >= 3:
        (num_aliases,) = r.unpack("I", "alias count")
        for i in range(num_aliases):
            alias = r.string(f"alias {i}")
            model.aliases[alias] = r.string(f"target of alias {alias}")
    if r.offset != r.size:
        raise CT2FormatError(f"{r.label}: {r.size - r.offset} unexpected bytes after the last "
                             f"record (offset {r.offset})")
    for alias, target in model.aliases.items():
        if target not in model.variables:
            raise CT2FormatError(f"{r.label}: alias {alias} points to missing variable {target}")
    return model
