"""Readers of the paper's benchmarks as their releases lay them out, into `nexus-o eval` manifest lines.

Each reader takes the benchmark's folder under the data root and returns manifest lines (dicts
in the format of `nexus_o.eval.tasks`) with absolute media paths, in a stable order. A line the
reader cannot use is an error naming the file and line (`LayoutError`); a missing audio file too.
The folder layouts are in docs/eval-suite.md.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from nexus_o.eval.tasks import EvalError

ASR_PROMPT = {"en": "<audio>Transcribe this recording.", "zh": "<audio>请转写这段录音。"}
S2TT_PROMPT = {"en": "<audio>Translate the speech into English.", "zh": "<audio>请把这段语音翻译成中文。"}
TTS_PROMPT = "Speak this text in a natural voice: "
AISHELL2_CHANNELS = ("iOS", "Android", "Mic")


class LayoutError(EvalError):
    """Benchmark files are not laid out as expected; the message names the file and line."""


def _line(prompt: str, reference: str, task: str, uid: str, audio: Path | None = None) -> dict:
    line = {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": reference}],
            "task": task, "id": uid}
    if audio is not None:
        line["audios"] = [str(audio)]
    return line


def _audio(path: Path, where: str) -> Path:
    if not path.is_file():
        raise LayoutError(f"{where}: audio file {path} not found")
    return path.resolve()


def _split_pair(raw: str, where: str) -> tuple[str, str]:
    key, _, value = raw.strip().partition(" ")
    if not key or not value.strip():
        raise LayoutError(f"{where}: expected '<utterance id> <text>', got {raw.strip()[:80]!r}")
    return key, value.strip()


def librispeech(folder: Path) -> list[dict]:
    """LibriSpeech/<split>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt + <utterance>.flac."""
    lines = []
    transcripts = sorted(folder.glob("*/*/*.trans.txt"))
    if not transcripts:
        raise LayoutError(f"{folder}: no <speaker>/<chapter>/*.trans.txt files (an extracted OpenSLR LibriSpeech split)")
    for trans in transcripts:
        for number, raw in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            if not raw.strip():
                continue
            uid, text = _split_pair(raw, f"{trans}:{number}")
            audio = _audio(trans.parent / f"{uid}.flac", f"{trans}:{number}")
            lines.append(_line(ASR_PROMPT["en"], text, "asr:en", uid, audio))
    return lines


def aishell2(folder: Path) -> list[dict]:
    """AISHELL-2/<iOS|Android|Mic>/test/{wav.scp, trans.txt} (Kaldi style; wav.scp paths relative to test/)."""
    lines = []
    channels = [c for c in AISHELL2_CHANNELS if (folder / c / "test" / "wav.scp").is_file()]
    if not channels:
        raise LayoutError(f"{folder}: none of {', '.join(f'{c}/test/wav.scp' for c in AISHELL2_CHANNELS)} found")
    for channel in channels:
        test = folder / channel / "test"
        wavs = {}
        for number, raw in enumerate((test / "wav.scp").read_text(encoding="utf-8").splitlines(), 1):
            if raw.strip():
                uid, path = _split_pair(raw, f"{test / 'wav.scp'}:{number}")
                wavs[uid] = (test / path, f"{test / 'wav.scp'}:{number}")
        trans_path = test / "trans.txt"
        if not trans_path.is_file():
            raise LayoutError(f"{test}: trans.txt not found beside wav.scp")
        for number, raw in enumerate(trans_path.read_text(encoding="utf-8").splitlines(), 1):
            if not raw.strip():
                continue
            uid, text = _split_pair(raw, f"{trans_path}:{number}")
            if uid not in wavs:
                raise LayoutError(f"{trans_path}:{number}: utterance {uid} is not in wav.scp")
            audio = _audio(*wavs[uid])
            lines.append(_line(ASR_PROMPT["zh"], text, "asr:zh", f"{channel}/{uid}", audio))
    return lines


def covost2(source: str, target: str) -> Callable[[Path], list[dict]]:
    """covost2/<source>/: covost_v2.<source>_<target>.test.tsv (path, sentence, translation, ...) + clips/."""
    def read(folder: Path) -> list[dict]:
        tsv = folder / f"covost_v2.{source}_{target}.test.tsv"
        if not tsv.is_file():
            raise LayoutError(f"{tsv} not found (written by CoVoST's get_covost_splits.py --split test)")
        lang = target.split("-")[0]
        lines = []
        with open(tsv, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            missing = {"path", "translation"} - set(reader.fieldnames or [])
            if missing:
                raise LayoutError(f"{tsv}:1: header lacks column(s) {sorted(missing)}")
            for number, row in enumerate(reader, 2):
                if not (row.get("translation") or "").strip():
                    raise LayoutError(f"{tsv}:{number}: empty translation")
                audio = _audio(folder / "clips" / row["path"], f"{tsv}:{number}")
                lines.append(_line(S2TT_PROMPT[lang], row["translation"].strip(),
                                   f"s2tt:{source.split('-')[0]}-{lang}", Path(row["path"]).stem, audio))
        return lines
    return read


def seed_tts(lang: str) -> Callable[[Path], list[dict]]:
    """seedtts_testset/<lang>/meta.lst: `utterance|prompt text|prompt wav|text` a line.

    The prompt speech is not used: NEXUS-O speaks in its own voice (no zero-shot voice cloning).
    """
    def read(folder: Path) -> list[dict]:
        meta = folder / "meta.lst"
        if not meta.is_file():
            raise LayoutError(f"{meta} not found")
        lines = []
        for number, raw in enumerate(meta.read_text(encoding="utf-8").splitlines(), 1):
            if not raw.strip():
                continue
            fields = raw.split("|")
            if len(fields) < 4 or not fields[3].strip():
                raise LayoutError(f"{meta}:{number}: expected 'utterance|prompt text|prompt wav|text', "
                                  f"got {raw[:80]!r}")
            text = fields[3].strip()
            lines.append(_line(TTS_PROMPT + text, text, f"tts:{lang}", fields[0].strip()))
        return lines
    return read
