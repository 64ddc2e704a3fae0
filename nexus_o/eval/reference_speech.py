"""The judge's floor for tts: the same ASR and protocol on the reference recordings.

Seed-TTS tables list the ground-truth speech beside every system, because the ASR judge errs on
real speech too (a small Whisper hears "two" as "to" and "eight" as "hey"). A model's tts WER
reads right only next to this figure.
"""

from __future__ import annotations

import json
from pathlib import Path

from tqdm.auto import tqdm

from nexus_o.eval.metrics.asr import ErrorRateResult, error_rate


def reference_speech_error(manifest: str | Path, asr, lang: str = "en") -> ErrorRateResult:
    """Seed-TTS WER/CER of `asr` (an object with `transcribe(wav, rate, language)`) on the
    `speech.audio` recordings of a tts manifest, against their reply texts.

    Raises ValueError naming the file and line of a line without a reference recording.
    """
    import soundfile as sf

    manifest = Path(manifest)
    refs, hyps = [], []
    lines = manifest.read_text(encoding="utf-8").splitlines()
    for number, raw in enumerate(tqdm(lines, desc="reference speech"), start=1):
        if not raw.strip():
            continue
        row = json.loads(raw)
        audio = (row.get("speech") or {}).get("audio")
        if not audio:
            raise ValueError(f"{manifest}:{number}: no speech.audio reference recording to transcribe")
        wav, rate = sf.read(manifest.parent / audio, dtype="float32", always_2d=False)
        content = row["messages"][-1]["content"]
        if not isinstance(content, str):  # OpenAI-style parts
            content = " ".join(part.get("text", "") for part in content if part.get("type") == "text")
        refs.append(content)
        hyps.append(asr.transcribe(wav, rate, language=lang).text)
    return error_rate(refs, hyps, lang, protocol="seed-tts", ref_name="texts", hyp_name="transcripts")
