"""The judge's floor for tts: the same ASR and protocol on the reference recordings.

Seed-TTS tables list the ground-truth speech beside every system, because the ASR judge errs on
real speech too (a small Whisper hears "two" as "to" and "eight" as "hey"). A model's tts WER
reads right only next to this figure, and only under a stated normalisation: the Seed-TTS
protocol compares words as written, so a judge that writes "2" for "two" is wrong there and right
under Whisper's normaliser. `judge_table` gives both, for every judge, for the model and the floor.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tqdm.auto import tqdm

from nexus_o.data.manifest import read_manifest
from nexus_o.eval.metrics.asr import ErrorRateResult, error_rate
from nexus_o.eval.tasks import get_task

TTS_PROTOCOLS = ("seed-tts", "seed-tts-whisper")  # the paper's protocol; the same with Whisper's normaliser


def _references(manifest: str | Path) -> list[tuple[int, str, str, str]]:
    """(manifest line, text, language, recording path) of every line of a tts manifest."""
    task, rows = get_task("tts"), []
    for line, sample in read_manifest(manifest, media="exists"):
        where = f"{manifest}:{line}"
        if sample.speech is None or sample.speech.audio is None:
            raise ValueError(f"{where}: no speech.audio reference recording to transcribe")
        item = task.item(line, sample, where)
        rows.append((line, item.reference, item.lang, str(sample.speech.audio)))
    return rows


def transcribe_files(paths: list[str | Path], langs: list[str], asr, desc: str = "transcribe") -> list[str]:
    """`asr.transcribe(wav, rate, language)` of each WAV file; an empty file transcribes to ""."""
    import soundfile as sf

    texts = []
    for path, lang in tqdm(list(zip(paths, langs, strict=True)), desc=desc):
        wav, rate = sf.read(path, dtype="float32", always_2d=False)
        texts.append(asr.transcribe(wav, rate, language=lang).text if wav.size else "")
    return texts


def reference_speech_error(manifest: str | Path, asr, lang: str = "en",
                           protocol: str = "seed-tts") -> ErrorRateResult:
    """WER/CER of `asr` (an object with `transcribe(wav, rate, language)`) on the `speech.audio`
    recordings of a tts manifest, against their reply texts, under `protocol`.

    Lines are read and checked as the eval runner reads them (`read_manifest`, the tts task's
    item rules); a line without a reference recording is a ValueError naming file and line.
    """
    rows = _references(manifest)
    hyps = transcribe_files([r[3] for r in rows], [r[2] for r in rows], asr, desc="reference speech")
    return error_rate([r[1] for r in rows], hyps, lang, protocol=protocol, ref_name="texts", hyp_name="transcripts")


def judge_table(manifest: str | Path, speech: Mapping[int, str | Path], judges: Mapping[str, object],
                lang: str = "en", known: Mapping[str, Mapping[int, str]] | None = None) -> dict:
    """Every judge's error rate on the model's speech and on the reference recordings, under each
    of `TTS_PROTOCOLS`.

    Args:
        manifest: the tts test manifest (texts and reference recordings).
        speech: manifest line -> the model's WAV of that line (every line must have one).
        judges: judge name -> ASR object with `transcribe(wav, rate, language)`.
        known: judge name -> {line: transcript of the model's speech} already made (the eval
            runner's own judge), so that speech is not transcribed twice.

    Returns:
        {judge: {protocol: {"model": rate, "reference": rate, "gap": model - reference}},
         "transcripts": {judge: {"model": [...], "reference": [...]}}, "texts": [...]}, rates as fractions.
    """
    rows = _references(manifest)
    if missing := [line for line, *_ in rows if line not in speech]:
        raise ValueError(f"{manifest}: no model speech for line(s) {missing[:5]}")
    texts, langs = [r[1] for r in rows], [r[2] for r in rows]
    table: dict = {"texts": texts, "transcripts": {}}
    for name, asr in judges.items():
        cached = (known or {}).get(name, {})
        model = [cached[line] if line in cached else None for line, *_ in rows]
        todo = [k for k, text in enumerate(model) if text is None]
        for k, text in zip(todo, transcribe_files([speech[rows[k][0]] for k in todo], [langs[k] for k in todo],
                                                   asr, desc=f"{name}: model speech")):
            model[k] = text
        reference = transcribe_files([r[3] for r in rows], langs, asr, desc=f"{name}: reference speech")
        table["transcripts"][name] = {"model": model, "reference": reference}
        table[name] = {}
        for protocol in TTS_PROTOCOLS:
            rates = {who: round(error_rate(texts, hyps, lang, protocol=protocol).score, 4)
                     for who, hyps in (("model", model), ("reference", reference))}
            table[name][protocol] = {**rates, "gap": round(rates["model"] - rates["reference"], 4)}
    return table
