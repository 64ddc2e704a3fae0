"""Manifests as Hugging Face ``datasets``: Arrow-cached map-style, or streaming.

Each line is parsed by our own validator (``manifest.parse_line``) and fed to the ``datasets``
generator builder rather than the ``json`` builder: pyarrow's JSON reader aborts the whole load
at the first malformed line, so it can neither skip bad lines nor check our schema. The
generator builder caches to Arrow the same way, keyed here by the manifest files' size and
modification time, and streams just as well.

Rows hold paths only (absolute, or ``data:`` URIs); the processor decodes media when the
training collator (``nexus_o.train.collate``) batches them::

    ds = load_manifest_dataset("train.jsonl", on_error="skip")
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import datasets
import pyarrow.compute as pc

from nexus_o.data.manifest import (LineIssue, ManifestError, OnError, RejectLog, Shard, iter_raw_lines, parse_line,
                                   read_manifest, split_manifest)
from nexus_o.data.media_checks import MediaCheck, check_sample_media
from nexus_o.data.schema import Sample
from nexus_o.version import __version__

_FORMAT_VERSION = 1  # bump when the row layout below changes, so old caches are not reused

_STR = datasets.Value("string")
FEATURES = datasets.Features({
    "id": _STR,
    "source": _STR,  # the manifest file
    "line": datasets.Value("int64"),
    "task": _STR,
    "messages": datasets.List({"role": _STR, "content": _STR}),
    "images": datasets.List(_STR),
    "videos": datasets.List(_STR),
    "audios": datasets.List(_STR),
    "speech_audio": _STR,
    "speech_codes_file": _STR,
    "speech_codes": datasets.List(datasets.List(datasets.Value("int64"))),  # inline [K, T]; [] when absent
    "speech_words": datasets.List({"word": _STR, "start": datasets.Value("float64"),
                                   "end": datasets.Value("float64")}),  # word timings; [] when absent
    "reference_audio": _STR,
    "audio_seconds": datasets.Value("float64"),  # summed input audio; None when media were not probed
    "speech_seconds": datasets.Value("float64"),
    "error": _STR,  # internal: the reject reason; removed before the dataset is returned
})
"""The row layout of every dataset ``load_manifest_dataset`` returns (minus ``error``)."""


def sample_to_row(sample: Sample, source: str, line: int, seconds: tuple[float, float] | None) -> dict[str, Any]:
    """Flatten a validated sample into the Arrow row layout of ``FEATURES``."""
    speech = sample.speech
    codes = speech.codes if speech is not None else None
    return {
        "id": str(sample.id) if sample.id is not None else f"{Path(source).name}:{line}",
        "source": source,
        "line": line,
        "task": sample.task,
        "messages": [{"role": m.role, "content": m.content} for m in sample.messages],
        "images": sample.images,
        "videos": sample.videos,
        "audios": sample.audios,
        "speech_audio": speech.audio if speech is not None else None,
        "speech_codes_file": codes if isinstance(codes, str) else None,
        "speech_codes": codes if isinstance(codes, list) else [],
        "speech_words": [w.model_dump() for w in speech.words] if speech is not None and speech.words else [],
        "reference_audio": sample.reference_audio,
        "audio_seconds": seconds[0] if seconds else None,
        "speech_seconds": seconds[1] if seconds else None,
        "error": None,
    }


def _reject_row(source: str, line: int, reason: str) -> dict[str, Any]:
    row = {key: None for key in FEATURES}
    row.update(source=source, line=line, error=reason, messages=[], images=[], videos=[], audios=[], speech_codes=[],
               speech_words=[])
    return row


def _rows(shards: list[Shard], media: MediaCheck, rejects: RejectLog | None = None) -> Iterator[dict[str, Any]]:
    """Generator for the builders. Bad lines become reject rows, or go to ``rejects`` when given.

    ``shards`` is a list so that ``datasets`` can hand shards to parallel builders or workers.
    """
    for shard in shards:
        path = shard.path
        base_dir = str(Path(path).parent)
        for number, raw, _ in iter_raw_lines(path, shard):
            try:
                sample = parse_line(raw, number, path, base_dir)
                stats = check_sample_media(sample, media)
            except ValueError as err:
                reason = getattr(err, "reason", str(err))
                if rejects is None:
                    yield _reject_row(path, number, reason)
                else:
                    rejects.record(LineIssue(path, number, reason))
                continue
            seconds = (stats.audio_seconds, stats.speech_seconds) if media != "none" else None
            yield sample_to_row(sample, path, number, seconds)


def load_manifest_dataset(
    path: str | os.PathLike | Sequence[str | os.PathLike],
    streaming: bool = False,
    on_error: OnError = "raise",
    *,
    media: MediaCheck = "exists",
    rejects: RejectLog | None = None,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    num_proc: int | None = None,
) -> datasets.Dataset | datasets.IterableDataset:
    """Load one or more JSONL manifests as a ``datasets.Dataset`` (or ``IterableDataset``).

    Args:
        path: a manifest, or several (streaming shards by file across DataLoader workers).
        streaming: lazy ``IterableDataset`` for manifests too large to convert up front.
        on_error: "raise" stops with a ``ManifestError`` naming the first bad line (and the count
            of others) before any row is returned; "skip" drops bad lines and records them in
            ``rejects`` (map-style: all up front; streaming: as they are met). Either way a bad
            line never raises in the middle of an epoch in skip mode.
        media: "exists" (default: files exist, audio headers give ``audio_seconds``), "decode"
            (every file decodes; slow) or "none".
        rejects: where skipped lines go; a fresh ``RejectLog`` (log warnings only) by default.
        cache_dir: ``datasets`` cache folder (default: the library's own).
        use_cache: reuse the Arrow cache of an unchanged manifest. The key covers the manifest
            files (size, mtime) and ``media``, not the media files: after fixing or deleting
            media without touching the manifest, pass False (or touch the manifest).
        num_proc: split each file into this many line-aligned shards. Map-style: built by as many
            processes. Streaming: DataLoader workers read different shards (without it, a single
            file is one shard and only one worker gets rows).

    Returns rows laid out as ``FEATURES`` without ``error``; media paths are absolute.
    """
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
    paths = [os.path.abspath(p) for p in ([path] if isinstance(path, (str, os.PathLike)) else path)]
    for p in paths:
        if not os.path.isfile(p):
            raise FileNotFoundError(f"manifest not found: {p}")
    rejects = rejects if rejects is not None else RejectLog()
    shards = [shard for p in paths for shard in split_manifest(p, num_proc or 1)]
    if streaming:
        if on_error == "raise":  # one pass now, so that a bad line cannot stop training later
            for p in paths:
                for _ in read_manifest(p, on_error="raise", media=media):
                    pass
        ds = datasets.IterableDataset.from_generator(
            _rows, features=FEATURES, gen_kwargs={"shards": shards, "media": media, "rejects": rejects})
        return ds.remove_columns("error")

    build = dict(features=FEATURES, gen_kwargs={"shards": shards, "media": media}, fingerprint=_fingerprint(paths, media),
                 num_proc=num_proc if num_proc and len(shards) > 1 else None)
    if use_cache:
        ds = datasets.Dataset.from_generator(_rows, cache_dir=str(cache_dir) if cache_dir else None, **build)
    else:  # build in memory; the scratch cache goes away with the folder
        with tempfile.TemporaryDirectory() as scratch:
            ds = datasets.Dataset.from_generator(_rows, cache_dir=scratch, keep_in_memory=True, **build)
    is_bad = pc.is_valid(ds.data.column("error"))  # a reason is set only on rejected lines
    bad = pc.indices_nonzero(is_bad).to_pylist()
    if bad and on_error == "raise":
        first = ds[bad[0]]
        more = f" (and {len(bad) - 1} more bad lines; `nexus-o data validate` lists them)" if len(bad) > 1 else ""
        raise ManifestError(first["source"], first["line"], first["error"] + more)
    for i in bad:
        row = ds[i]
        rejects.record(LineIssue(row["source"], row["line"], row["error"]))
    if bad:
        ds = ds.select(pc.indices_nonzero(pc.invert(is_bad)).to_pylist())
    return ds.remove_columns("error")


def _fingerprint(paths: list[str], media: MediaCheck) -> str:
    """Cache key: the files' identity and change stamps, the media check, the row format."""
    stamps = [(p, os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in paths]
    key = json.dumps({"paths": stamps, "media": media, "format": _FORMAT_VERSION, "version": __version__})
    return "nexus-o-manifest-" + hashlib.sha256(key.encode()).hexdigest()[:24]
