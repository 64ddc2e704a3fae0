"""Reading and validating JSONL manifests, with every problem tied to its line number.

``read_manifest`` yields ``(line_number, Sample)`` pairs and either stops at the first bad line
(``on_error="raise"``) or records it and moves on (``"skip"``). ``validate_manifest`` checks a
whole file (JSON, schema, tag/list counts, media files exist and decode) and returns a
``ValidationReport`` with counts by task and modality, audio hours and each bad line.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import ValidationError
from tqdm.auto import tqdm

from nexus_o.data.media_checks import MediaCheck, check_sample_media
from nexus_o.data.schema import Sample, resolve_sample_paths

logger = logging.getLogger(__name__)

OnError = Literal["skip", "raise"]


class ManifestError(ValueError):
    """A bad manifest line; the message starts with ``file:line:``."""

    def __init__(self, path: str | os.PathLike, line: int, reason: str):
        self.path, self.line, self.reason = str(path), line, reason
        super().__init__(f"{path}:{line}: {reason}")


@dataclass(frozen=True)
class LineIssue:
    """One rejected line: where it is and why."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


class RejectLog:
    """Collects rejected lines in skip mode: kept in memory, logged, optionally appended to a file.

    The file (JSON lines) is the record that survives DataLoader worker processes, which each
    hold their own copy of this object; lines are short, and appends are atomic in practice.
    """

    def __init__(self, path: str | os.PathLike | None = None, log_limit: int = 20):
        self.path = Path(path) if path is not None else None
        self.log_limit = log_limit
        self.issues: list[LineIssue] = []

    def record(self, issue: LineIssue) -> None:
        self.issues.append(issue)
        if len(self.issues) <= self.log_limit:  # a broken shard must not flood the training log
            logger.warning("skipping %s", issue)
            if len(self.issues) == self.log_limit:
                logger.warning("further skipped lines are recorded but not logged%s",
                               f" (see {self.path})" if self.path else "")
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(asdict(issue), ensure_ascii=False) + "\n")

    def __len__(self) -> int:
        return len(self.issues)


def format_validation_error(err: ValidationError) -> str:
    """Readable one-line reasons from pydantic errors, without union-branch noise."""
    errors = err.errors(include_url=False)
    # A list given where `str | list[part]` is expected also fails the `str` branch; drop that echo.
    if len(errors) > 1:
        errors = [e for e in errors if not (e["type"] == "string_type" and e["loc"][-1:] == ("str",))] or errors
    reasons = []
    for e in errors:
        loc = list(e["loc"])
        if e["type"] == "extra_forbidden":
            key = loc.pop()
            where = _render_loc(loc)
            reasons.append(f"unknown key {key!r}" + (f" in {where}" if where else ""))
            continue
        msg = e["msg"].removeprefix("Value error, ")
        where = _render_loc(loc)
        reasons.append(f"{where}: {msg}" if where else msg)
    return "; ".join(reasons)


def _render_loc(loc: list) -> str:
    """('messages', 0, 'content', 'list[tagged-union[..]]', 1, 'text', 'text') -> messages[0].content[1].text"""
    out, skip_tag = "", False
    for item in loc:
        if isinstance(item, int):
            out += f"[{item}]"
            continue
        if skip_tag:  # a tagged union puts the tag value after the list index
            skip_tag = False
            continue
        if "[" in item or item in ("str", "int"):  # union branch labels, not fields
            skip_tag = item.startswith("list[tagged-union")
            continue
        out += f".{item}" if out else item
    return out


def parse_line(raw: bytes, line: int, path: str | os.PathLike, base_dir: str) -> Sample:
    """Decode, parse and validate one manifest line; media paths come back absolute.

    Raises ``ManifestError`` naming ``path:line`` for non-UTF-8 bytes, empty lines, invalid
    JSON, a non-object value or any schema problem.
    """
    if line == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a UTF-8 byte-order mark written by some editors
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ManifestError(path, line, f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1})") from None
    text = text.rstrip("\r\n")
    if not text.strip():
        raise ManifestError(path, line, "empty line")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise ManifestError(path, line, f"invalid JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(obj, dict):
        raise ManifestError(path, line, f"expected a JSON object, got {type(obj).__name__}")
    try:
        sample = Sample.model_validate(obj)
    except ValidationError as err:
        raise ManifestError(path, line, format_validation_error(err)) from None
    return resolve_sample_paths(sample, base_dir)


@dataclass(frozen=True)
class Shard:
    """A line-aligned byte range of a manifest: ``[start, end)``, whose first line is ``first_line``."""

    path: str
    start: int
    end: int
    first_line: int = 1


def split_manifest(path: str | os.PathLike, parts: int) -> list[Shard]:
    """Cut a manifest into at most ``parts`` shards of about equal bytes, each starting on a line.

    One pass over the file counts the lines before each cut, so that readers working on the
    shards in parallel still report true line numbers.
    """
    path = str(path)
    size = os.path.getsize(path)
    shards: list[Shard] = []
    start, first, pos, line, k = 0, 1, 0, 0, 1
    if parts > 1:
        with open(path, "rb") as f:
            for raw in f:
                pos, line = pos + len(raw), line + 1
                if k < parts and pos >= size * k // parts and pos < size:
                    shards.append(Shard(path, start, pos, first))
                    start, first = pos, line + 1
                    while k < parts and pos >= size * k // parts:
                        k += 1
    shards.append(Shard(path, start, size, first))
    return shards


def iter_raw_lines(path: str | os.PathLike, shard: Shard | None = None) -> Iterator[tuple[int, bytes, int]]:
    """Yield ``(line_number, raw_bytes, bytes_consumed)`` for each line (of ``shard`` if given)."""
    start, end, number = (shard.start, shard.end, shard.first_line) if shard else (0, None, 1)
    with open(path, "rb") as f:
        f.seek(start)
        pos = start
        for raw in f:
            if end is not None and pos >= end:
                return
            yield number, raw, len(raw)
            number, pos = number + 1, pos + len(raw)


def read_manifest(
    path: str | os.PathLike,
    *,
    on_error: OnError = "raise",
    media: MediaCheck = "none",
    rejects: RejectLog | None = None,
) -> Iterator[tuple[int, Sample]]:
    """Yield ``(line_number, sample)`` for each good line of a JSONL manifest.

    ``media`` picks the file checks: "none", "exists" or "decode". In "raise" mode the first
    bad line raises ``ManifestError``; in "skip" mode it goes to ``rejects`` and reading goes on.
    """
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    base_dir = os.path.dirname(os.path.abspath(path))
    for number, raw, _ in iter_raw_lines(path):
        try:
            sample = parse_line(raw, number, path, base_dir)
            check_sample_media(sample, media)
        except ValueError as err:  # ManifestError and MediaError both derive from ValueError
            if on_error == "raise":
                raise err if isinstance(err, ManifestError) else ManifestError(path, number, str(err)) from None
            if rejects is not None:
                rejects.record(LineIssue(str(path), number, getattr(err, "reason", str(err))))
            continue
        yield number, sample


@dataclass
class ValidationReport:
    """What ``validate_manifest`` found. ``ok`` is True when no line is bad."""

    path: str
    lines: int = 0
    valid: int = 0
    media_checked: bool = True
    tasks: Counter = field(default_factory=Counter)
    modalities: Counter = field(default_factory=Counter)
    media_files: Counter = field(default_factory=Counter)
    audio_seconds: float = 0.0
    speech_seconds: float = 0.0
    bad: list[LineIssue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.bad

    def to_dict(self) -> dict:
        hours = (lambda s: round(s / 3600, 4)) if self.media_checked else (lambda s: None)
        return {
            "path": self.path, "ok": self.ok, "lines": self.lines, "valid": self.valid,
            "media_checked": self.media_checked, "tasks": dict(self.tasks), "modalities": dict(self.modalities),
            "media_files": dict(self.media_files), "audio_hours": hours(self.audio_seconds),
            "speech_hours": hours(self.speech_seconds),
            "bad": [{"line": b.line, "reason": b.reason} for b in self.bad],
        }

    def format(self, max_bad: int = 50) -> str:
        """A plain-text summary for terminals and logs."""
        def counts(c: Counter) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "-"

        hours = (f"{self.audio_seconds / 3600:.3f} h input audio, {self.speech_seconds / 3600:.3f} h speech targets"
                 if self.media_checked else "not measured (--no-media)")
        rows = [
            f"manifest:   {self.path}",
            f"lines:      {self.lines}  valid: {self.valid}  bad: {len(self.bad)}",
            f"tasks:      {counts(self.tasks)}",
            f"modalities: {counts(self.modalities)}",
            f"media:      {counts(self.media_files)}",
            f"audio:      {hours}",
        ]
        if self.bad:
            rows.append("bad lines:")
            rows += [f"  line {b.line}: {b.reason}" for b in self.bad[:max_bad]]
            if len(self.bad) > max_bad:
                rows.append(f"  ... and {len(self.bad) - max_bad} more")
        return "\n".join(rows)


def validate_manifest(path: str | os.PathLike, check_media: bool = True, *, progress: bool = True) -> ValidationReport:
    """Check every line of a manifest and report each bad one with its line number and reason.

    Explicit ``id`` values must be unique. With ``check_media`` every referenced file must exist
    and decode (audio: soundfile, then PyAV; image: PIL verify + load; video: PyAV, at least one
    frame; codes: a 2-D integer .npy), and audio durations are summed. Without it only JSON, the
    schema and the ids are checked.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    base_dir = os.path.dirname(os.path.abspath(path))
    report = ValidationReport(path=str(path), media_checked=check_media)
    level: MediaCheck = "decode" if check_media else "none"
    first_seen: dict[str, int] = {}  # sample id -> line, to catch duplicated samples
    with tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=f"validate {path.name}",
              disable=None if progress else True) as bar:
        for number, raw, size in iter_raw_lines(path):
            bar.update(size)
            report.lines = number
            try:
                sample = parse_line(raw, number, path, base_dir)
                if sample.id is not None and first_seen.setdefault(str(sample.id), number) != number:
                    raise ManifestError(path, number, f"duplicate id {str(sample.id)!r} (first on line "
                                                      f"{first_seen[str(sample.id)]})")
                stats = check_sample_media(sample, level)
            except ValueError as err:
                report.bad.append(LineIssue(str(path), number, getattr(err, "reason", str(err))))
                continue
            report.valid += 1
            report.tasks[sample.task or "(none)"] += 1
            _count_modalities(report, sample)
            report.audio_seconds += stats.audio_seconds
            report.speech_seconds += stats.speech_seconds
    return report


def _count_modalities(report: ValidationReport, sample: Sample) -> None:
    present = [m for m in ("image", "video", "audio") if getattr(sample, m + "s")]
    if sample.speech is not None:
        present.append("speech")
    for name in present or ["text-only"]:
        report.modalities[name] += 1
    for m in ("image", "video", "audio"):
        report.media_files[m] += len(getattr(sample, m + "s"))
    report.media_files["speech"] += sample.speech is not None
    report.media_files["reference_audio"] += sample.reference_audio is not None
