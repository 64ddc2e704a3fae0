"""A fake data root in the layout of docs/eval-suite.md: each release's own files, a few tiny clips."""

from __future__ import annotations

import json
from pathlib import Path

import soundfile as sf

from tests.conftest import tone


def _clip(path: Path, k: int, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(0.3 + 0.05 * k, freq=180 + 40 * k), 16000, format=fmt)


def write_data_root(root: Path) -> Path:
    """LibriSpeech test-clean, AISHELL-2 (iOS), CoVoST2 zh-en, LLaMA Questions, Seed-TTS en and zh;
    no LibriSpeech test-other and no CoVoST2 en-zh (their benchmarks report "no data")."""
    chapter = root / "LibriSpeech" / "test-clean" / "1089" / "134686"
    chapter.mkdir(parents=True)
    (chapter / "1089-134686.trans.txt").write_text("1089-134686-0000 HE HOPED THERE WOULD BE STEW\n"
                                                   "1089-134686-0001 STUFF IT INTO YOU\n")
    for k in range(2):
        _clip(chapter / f"1089-134686-000{k}.flac", k, "FLAC")
    test = root / "AISHELL-2" / "iOS" / "test"
    (test / "wav").mkdir(parents=True)
    (test / "wav.scp").write_text("IT0011W0001 wav/IT0011W0001.wav\nIT0011W0002 wav/IT0011W0002.wav\n")
    (test / "trans.txt").write_text("IT0011W0001 换一首歌\nIT0011W0002 明天天气怎么样\n", encoding="utf-8")
    for k in range(2):
        _clip(test / "wav" / f"IT0011W000{k + 1}.wav", k)
    covost = root / "covost2" / "zh-CN"
    covost.mkdir(parents=True)
    (covost / "covost_v2.zh-CN_en.test.tsv").write_text(
        "path\tsentence\ttranslation\tclient_id\n"
        "common_voice_zh-CN_1.wav\t我们明天见\tsee you tomorrow\tc1\n"
        "common_voice_zh-CN_2.wav\t红色的方块\ta red square\tc2\n", encoding="utf-8")
    for k in range(2):
        _clip(covost / "clips" / f"common_voice_zh-CN_{k + 1}.wav", k)
    llama = root / "llama_questions"
    llama.mkdir()
    _clip(llama / "q1.wav", 0)
    _clip(llama / "q2.wav", 1)
    rows = [{"messages": [{"role": "user", "content": "<audio>"}, {"role": "assistant", "content": answer}],
             "audios": [audio], "task": "sqa:en"} for audio, answer in (("q1.wav", "Paris | the city of Paris"),
                                                                       ("q2.wav", "four | 4"))]
    (llama / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for lang, texts in (("en", ["digit one", "digit two"]), ("zh", ["红色的方块", "我们明天见"])):
        folder = root / "seedtts_testset" / lang
        folder.mkdir(parents=True)
        (folder / "meta.lst").write_text("".join(f"{lang}-{k}|prompt text|prompt-wavs/{k}.wav|{t}\n"
                                                 for k, t in enumerate(texts)), encoding="utf-8")
    return root
