"""Task templates: every task in both languages, seeded, and valid manifest lines."""

from __future__ import annotations

import random

import pytest

from nexus_o.data.schema import Sample
from nexus_o.data.templates import LANGS, TASKS, TEMPLATES, render_sample, render_task

FIELDS = {
    "asr": {"transcript": "hello"},
    "s2tt": {"source_lang": "en", "target_lang": "zh", "translation": "你好"},
    "s2t_chat": {"response": "Paris."},
    "audio_caption": {"caption": "a dog barks"},
    "emotion": {"emotion": "happy"},
    "tts": {"text": "good morning"},
    "s2s_chat": {"response": "Sure."},
}


def test_the_papers_tasks_are_all_there():
    assert set(TASKS) == set(FIELDS)
    for task in TASKS:
        for lang in LANGS:
            assert len(TEMPLATES[task].prompts[lang]) >= 3, (task, lang)


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("task", TASKS)
def test_every_task_renders_a_valid_sample(task, lang):
    audio = None if task == "tts" else "clip.wav"
    speech = {"audio": "target.wav"} if task in ("tts", "s2s_chat") else None
    line = render_sample(task, lang, 0, audio=audio, speech=speech, **FIELDS[task])
    sample = Sample.model_validate(line)  # tag counts match the media lists
    assert sample.messages[-1].role == "assistant"
    user = next(m.content for m in sample.messages if m.role == "user")
    assert ("<audio>" in user) == (task != "tts")
    if task == "tts":
        assert "good morning" in user and sample.messages[-1].content == "good morning"


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_messages_and_seeds_vary_the_wording(task):
    for lang in LANGS:
        draws = [render_task(task, lang, random.Random(seed), **FIELDS[task]) for seed in range(40)]
        assert draws[:5] == [render_task(task, lang, seed, **FIELDS[task]) for seed in range(5)]
        assert len({str(d) for d in draws}) > 1


def test_language_specific_content():
    zh = render_task("s2tt", "zh", 1, source_lang="zh", target_lang="en", translation="hi")
    assert "中文" in zh[0]["content"] and "英文" in zh[0]["content"]
    en = render_task("s2tt", "en", 1, source_lang="zh", target_lang="en")
    assert "Chinese" in en[0]["content"] and "English" in en[0]["content"]
    assert len(en) == 1  # no answer given: a prompt only, for evaluation
    assert render_task("emotion", "zh", 0, emotion="Sad")[-1]["content"] == "悲伤"
    assert render_task("s2s_chat", "zh", 0)[0]["role"] == "system"


def test_field_errors():
    with pytest.raises(ValueError, match="unknown task 'ocr'"):
        render_task("ocr", "en", 0)
    with pytest.raises(ValueError, match="unknown language 'fr'"):
        render_task("asr", "fr", 0)
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['transcrpt'\]"):
        render_task("asr", "en", 0, transcrpt="x")
    with pytest.raises(ValueError, match=r"needs field\(s\) \['text'\]"):
        render_task("tts", "en", 0)
    with pytest.raises(ValueError, match="distinct source_lang and target_lang"):
        render_task("s2tt", "en", 0, source_lang="en", target_lang="en")
    with pytest.raises(ValueError, match="needs input audio"):
        render_sample("asr", "en", 0, transcript="x")
