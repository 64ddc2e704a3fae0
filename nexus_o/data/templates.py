"""Task templates: chat messages for each audio task, with several prompt wordings per language.

Training on one fixed instruction teaches the model that exact string; a few wordings per task,
drawn with a seeded RNG, keep the instruction following general while staying reproducible.
The paper's tasks (Table 1) are all here, in English and Chinese::

    render_task("asr", "en", random.Random(2), transcript="hello world")
    -> [{"role": "user", "content": "<audio>\\nTranscribe this recording."},
        {"role": "assistant", "content": "hello world"}]

``lang`` is the language of the instruction. Leave out the answer field to get a prompt only
(for evaluation). ``render_sample`` builds a whole manifest line around the messages.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

LANGS = ("en", "zh")
LANG_NAMES = {"en": {"en": "English", "zh": "Chinese"}, "zh": {"en": "英文", "zh": "中文"}}
"""LANG_NAMES[instruction language][language] -> its name in the instruction language."""

EMOTIONS_ZH = {"neutral": "中性", "happy": "开心", "sad": "悲伤", "angry": "生气", "surprised": "惊讶",
               "fearful": "害怕", "disgusted": "厌恶"}
"""Chinese answers for the usual emotion labels; other labels are kept as given."""


@dataclass(frozen=True)
class TaskTemplate:
    """Prompt wordings of one task. ``{name}`` slots are filled from the fields."""

    prompts: dict[str, tuple[str, ...]]
    answer: str  # the field that becomes the assistant message
    fields: tuple[str, ...] = ()  # required fields used in the prompt
    systems: dict[str, tuple[str, ...]] = field(default_factory=dict)
    audio_input: bool = True


TEMPLATES: dict[str, TaskTemplate] = {
    "asr": TaskTemplate(answer="transcript", prompts={
        "en": ("<audio>\nTranscribe this recording.", "Write down exactly what is said in this audio.\n<audio>",
               "<audio>\nWhat are the words spoken here? Give the transcript only.",
               "Convert the speech to text.\n<audio>"),
        "zh": ("<audio>\n请转写这段录音。", "请把这段音频里说的话一字不差地写下来。\n<audio>",
               "<audio>\n这段语音说了什么？只输出转写文本。", "将语音转换为文字。\n<audio>"),
    }),
    "s2tt": TaskTemplate(answer="translation", fields=("source_lang", "target_lang"), prompts={
        "en": ("<audio>\nTranslate this {source} speech into {target}.",
               "Listen to the {source} audio and give its {target} translation.\n<audio>",
               "<audio>\nWhat does the speaker say? Answer in {target}, translating from {source}.",
               "Render the following {source} speech as {target} text.\n<audio>"),
        "zh": ("<audio>\n请把这段{source}语音翻译成{target}。", "听这段{source}音频，给出它的{target}译文。\n<audio>",
               "<audio>\n说话人讲了什么？请从{source}翻译成{target}。", "将下面的{source}语音译为{target}文字。\n<audio>"),
    }),
    "s2t_chat": TaskTemplate(answer="response", prompts={
        "en": ("<audio>", "<audio>\nPlease answer the question in the audio.", "Reply to what you hear.\n<audio>"),
        "zh": ("<audio>", "<audio>\n请回答音频中的问题。", "请回应你听到的内容。\n<audio>"),
    }, systems={
        "en": ("You are a helpful assistant. The user speaks to you; reply in text.",
               "You are a friendly assistant that listens to spoken questions and answers them clearly."),
        "zh": ("你是一个乐于助人的助手。用户用语音和你交流，请用文字回复。", "你是一个友好的助手，认真倾听用户的语音提问并清楚地回答。"),
    }),
    "audio_caption": TaskTemplate(answer="caption", prompts={
        "en": ("<audio>\nDescribe this audio.", "What can you hear in this clip? Describe it in one sentence.\n<audio>",
               "<audio>\nGive a short caption for the sounds in this recording."),
        "zh": ("<audio>\n描述这段音频。", "这段音频里能听到什么？请用一句话描述。\n<audio>", "<audio>\n为这段录音中的声音写一句简短的说明。"),
    }),
    "emotion": TaskTemplate(answer="emotion", prompts={
        "en": ("<audio>\nWhat emotion does the speaker express? Answer with one word.",
               "Identify the speaker's emotion.\n<audio>", "<audio>\nHow does the speaker feel? Name the emotion."),
        "zh": ("<audio>\n说话人表达了什么情绪？用一个词回答。", "识别说话人的情绪。\n<audio>", "<audio>\n说话人是什么心情？请说出情绪类别。"),
    }),
    "tts": TaskTemplate(answer="text", fields=("text",), audio_input=False, prompts={
        "en": ("Read this aloud: {text}", "Please say the following sentence.\n{text}",
               "Speak this text in a natural voice: {text}"),
        "zh": ("请朗读：{text}", "请说出下面这句话。\n{text}", "用自然的语气读出这段文字：{text}"),
    }),
    "s2s_chat": TaskTemplate(answer="response", prompts={
        "en": ("<audio>", "<audio>\nPlease answer out loud.", "Answer what I just asked.\n<audio>"),
        "zh": ("<audio>", "<audio>\n请用语音回答。", "回答我刚才的问题。\n<audio>"),
    }, systems={
        "en": ("You are a voice assistant. Listen to the user and answer in short, spoken-style sentences.",
               "You are a helpful assistant who talks with the user by voice; keep answers brief and conversational."),
        "zh": ("你是一个语音助手。请倾听用户的话，用简短、口语化的句子回答。", "你是一个用语音和用户聊天的助手，回答要简短自然，像日常对话。"),
    }),
}

TASKS = tuple(TEMPLATES)


def _rng(rng: random.Random | int) -> random.Random:
    return rng if isinstance(rng, random.Random) else random.Random(rng)


def _prompt_fields(task: str, lang: str, fields: dict[str, Any]) -> dict[str, str]:
    """Values for the prompt's ``{slots}``; s2tt languages become names in ``lang``."""
    if task != "s2tt":
        return {k: str(fields[k]) for k in TEMPLATES[task].fields}
    src, tgt = fields["source_lang"], fields["target_lang"]
    if src not in LANGS or tgt not in LANGS or src == tgt:
        raise ValueError(f"s2tt needs distinct source_lang and target_lang from {LANGS}, got {src!r} -> {tgt!r}")
    return {"source": LANG_NAMES[lang][src], "target": LANG_NAMES[lang][tgt]}


def render_task(task: str, lang: str, rng: random.Random | int, **fields: Any) -> list[dict[str, str]]:
    """Chat messages for ``task`` with an instruction in ``lang``, wording drawn from ``rng``.

    Args:
        task: one of ``TASKS``: asr, s2tt, s2t_chat, audio_caption, emotion, tts, s2s_chat.
        lang: instruction language, "en" or "zh".
        rng: a ``random.Random`` (advanced by the draw) or an int seed.
        fields: the task's prompt fields (s2tt: ``source_lang``, ``target_lang``; tts: ``text``)
            and optionally its answer (asr ``transcript``, s2tt ``translation``, chats
            ``response``, ``caption``, ``emotion``; tts answers with ``text``).

    Returns ``[{"role", "content"}, ...]``: optional system, user (with ``<audio>`` unless tts),
    then assistant when the answer is known. Unknown or missing fields raise ``ValueError``.
    """
    if task not in TEMPLATES:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}; known: {', '.join(LANGS)}")
    spec = TEMPLATES[task]
    allowed = set(spec.fields) | {spec.answer}
    if unknown := sorted(set(fields) - allowed):
        raise ValueError(f"task {task!r} got unknown field(s) {unknown}; it takes {sorted(allowed)}")
    if missing := [f for f in spec.fields if f not in fields]:
        raise ValueError(f"task {task!r} needs field(s) {missing}")
    rng = _rng(rng)
    messages = []
    if spec.systems:
        messages.append({"role": "system", "content": rng.choice(spec.systems[lang])})
    messages.append({"role": "user", "content": rng.choice(spec.prompts[lang]).format(**_prompt_fields(task, lang, fields))})
    answer = fields.get(spec.answer)
    if answer is not None:
        if task == "emotion" and lang == "zh":
            answer = EMOTIONS_ZH.get(str(answer).lower(), answer)
        messages.append({"role": "assistant", "content": str(answer)})
    return messages


def render_sample(task: str, lang: str, rng: random.Random | int, *, audio: str | None = None,
                  speech: dict[str, Any] | None = None, id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A manifest line (dict) for ``task``: messages from ``render_task`` plus media.

    ``audio`` is the input clip (required except for tts); ``speech`` the stage-3 target
    (``{"audio": path}`` or ``{"codes": ...}``), expected for tts and s2s_chat.
    """
    spec = TEMPLATES.get(task)
    if spec is not None and spec.audio_input != (audio is not None):
        raise ValueError(f"task {task!r} {'needs' if spec.audio_input else 'takes no'} input audio")
    line: dict[str, Any] = {"task": task, "messages": render_task(task, lang, rng, **fields)}
    if audio is not None:
        line["audios"] = [audio]
    if speech is not None:
        line["speech"] = speech
    if id is not None:
        line["id"] = id
    return line
