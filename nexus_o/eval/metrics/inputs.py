"""Reading and checking the reference / hypothesis streams that every metric scores.

A stream is one text a line. Empty lines in the middle are kept (an empty hypothesis is a
real answer: all deletions); a single trailing newline does not add an empty last line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class MetricInputError(ValueError):
    """Inputs a metric cannot score: unequal lengths, unreadable files, nothing to score."""


class LineCountMismatchError(MetricInputError):
    """References and hypotheses do not pair up one to one."""


class EmptyReferencesError(MetricInputError):
    """Every reference is empty after normalisation, so no error rate is defined."""


def read_lines(path: str | Path) -> list[str]:
    """Read a UTF-8 text file as one item a line.

    Args:
        path: the file. A byte-order mark and Windows line endings are accepted.

    Returns:
        The lines without their line endings; a final newline does not make an extra empty line.

    Raises:
        FileNotFoundError: the file does not exist.
        MetricInputError: the file is not valid UTF-8 (the message names the file and byte offset).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise MetricInputError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason})") from err
    if text == "":
        return []
    # Split on "\n" only: str.splitlines() would also break on U+2028, form feeds and other
    # characters that can legitimately occur inside one transcript.
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def check_paired(
    refs: Sequence[object],
    hyps: Sequence[object],
    ref_name: str = "references",
    hyp_name: str = "hypotheses",
) -> None:
    """Raise LineCountMismatchError unless `refs` and `hyps` have the same length.

    Args:
        refs, hyps: the two streams (any sequences).
        ref_name, hyp_name: how the message names them, e.g. their file paths.
    """
    if isinstance(refs, str) or isinstance(hyps, str):
        raise MetricInputError("references and hypotheses must be sequences of texts, not one string")
    if len(refs) != len(hyps):
        raise LineCountMismatchError(
            f"{ref_name} has {len(refs)} lines but {hyp_name} has {len(hyps)} lines; "
            "each reference needs exactly one hypothesis"
        )
    if len(refs) == 0:
        raise MetricInputError(f"{ref_name} and {hyp_name} are empty: nothing to score")


def check_texts(items: Sequence[object], name: str) -> None:
    """Raise MetricInputError naming the first item of `items` that is not a string."""
    for k, item in enumerate(items):
        if not isinstance(item, str):
            raise MetricInputError(f"{name}[{k}] is {type(item).__name__}, expected str")


def read_paired(refs_path: str | Path, hyps_path: str | Path) -> tuple[list[str], list[str]]:
    """Read a reference file and a hypothesis file and check that their lines pair up.

    Returns:
        (references, hypotheses), equal-length lists of strings.

    Raises:
        LineCountMismatchError: the message names both files and both line counts.
    """
    refs = read_lines(refs_path)
    hyps = read_lines(hyps_path)
    check_paired(refs, hyps, ref_name=str(refs_path), hyp_name=str(hyps_path))
    return refs, hyps
