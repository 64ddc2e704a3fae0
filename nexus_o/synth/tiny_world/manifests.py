"""The manifests of the tiny world, assembled from its plan and the clips that were synthesised.

Lines use the data layer's shape and task templates (`nexus_o.data.templates.render_sample`);
media paths are relative to the manifest's folder. The wording of each line's instruction is
drawn from a generator keyed by (seed, sample id). A sample whose clip failed is left out and
counted. Evaluation files (`test/*.jsonl`, and `val_vqa` / `test_vqa`) label every image question
`vqa`, spoken or written, because `nexus-o eval` reads the task from the file name; training
files keep the paper's task names (`s2t_chat`, `s2s_chat`).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

from nexus_o.data.templates import render_sample
from nexus_o.synth.config import TinyWorldConfig
from nexus_o.synth.tiny_world.plan import QA, WorldPlan
from nexus_o.synth.tiny_world.splice import SplicedPhrase


def write_jsonl(path: Path, lines: list[dict]) -> int:
    """Write `lines` as JSONL atomically; returns the line count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    os.replace(tmp, path)
    return len(lines)


class WorldLines:
    """Renders the manifest lines of one world. `clips` maps clip id -> path relative to the world."""

    def __init__(self, plan: WorldPlan, clips: dict[str, str], seed: int):
        self.plan, self.clips, self.seed = plan, clips, seed
        self.dropped = 0

    def _rng(self, sample_id: str) -> random.Random:
        return random.Random(f"tiny-world/{self.seed}/line/{sample_id}")

    def _ref(self, clip_id: str) -> str | None:
        ref = self.clips.get(clip_id)
        if ref is None:
            self.dropped += 1
        return ref

    def asr(self, split: str) -> list[dict]:
        """Spoken word / phrase -> its transcript."""
        lines = []
        for clip_id, text in self.plan.asr[split]:
            if (ref := self._ref(clip_id)) is not None:
                lines.append(render_sample("asr", "en", self._rng(clip_id), audio=ref, transcript=text, id=clip_id))
        return lines

    def spoken_qa(self, split: str, speech_target: bool = False, task: str | None = None) -> list[dict]:
        """Image + spoken question -> the answer (s2t_chat), or with joe's spoken answer (s2s_chat)."""
        lines = []
        for qa in self.plan.qa[split]:
            question = self._ref(qa.clip)
            if question is None:
                continue
            if not speech_target:
                line = render_sample("s2t_chat", "en", self._rng(qa.id), audio=question, response=qa.answer,
                                     id=f"{qa.id}-speech")
            elif (answer := self._ref(self.plan.target_clip(qa.answer))) is not None:
                line = render_sample("s2s_chat", "en", self._rng(qa.id), audio=question, speech={"audio": answer},
                                     response=qa.answer, id=f"{qa.id}-s2s")
            else:
                continue
            lines.append(_with_image(line, qa, task))
        return lines

    def text_qa(self, split: str) -> list[dict]:
        """Image + written question -> the answer."""
        return [{"task": "vqa", "messages": [{"role": "user", "content": f"<image>\n{qa.question}"},
                                             {"role": "assistant", "content": qa.answer}],
                 "images": [qa.image.path], "id": f"{qa.id}-text"} for qa in self.plan.qa[split]]

    def tts(self, split: str, repeats: int = 1) -> list[dict]:
        """Text -> joe's speech of it, `repeats` lines per text with different instructions."""
        lines = []
        for i, text in enumerate(self.plan.tts_texts[split]):
            if (ref := self._ref(self.plan.target_clip(text))) is None:
                continue
            for r in range(repeats):
                sample_id = f"tts-{split}-{i:05d}-{r}"
                lines.append(render_sample("tts", "en", self._rng(sample_id), speech={"audio": ref}, text=text,
                                           id=sample_id))
        return lines

    def tts_spliced(self, phrases: list[SplicedPhrase]) -> list[dict]:
        """Text -> joe's spliced speech of it, with the words' timings."""
        lines = []
        for phrase in phrases:
            sample_id = f"tts-splice-{phrase.index:05d}"
            lines.append(render_sample("tts", "en", self._rng(sample_id), text=phrase.text, id=sample_id,
                                       speech={"audio": phrase.audio, "words": phrase.words}))
        return lines


def _with_image(line: dict, qa: QA, task: str | None) -> dict:
    user = next(m for m in line["messages"] if m["role"] == "user")
    user["content"] = "<image>" + user["content"]
    return {**line, "task": task or line["task"], "images": [qa.image.path]}


def _shuffled(lines: list[dict], seed: int, name: str) -> list[dict]:
    random.Random(f"tiny-world/{seed}/shuffle/{name}").shuffle(lines)
    return lines


def _rebased(lines: list[dict], prefix: str) -> list[dict]:
    """The same lines for a manifest one folder down: media paths get `prefix` ("../")."""
    out = []
    for line in lines:
        line = json.loads(json.dumps(line))
        for key in ("images", "audios"):
            if key in line:
                line[key] = [prefix + p for p in line[key]]
        if "speech" in line:
            line["speech"] = {**line["speech"], "audio": prefix + line["speech"]["audio"]}  # words kept
        out.append(line)
    return out


def write_manifests(out: Path, plan: WorldPlan, cfg: TinyWorldConfig, clips: dict[str, str],
                    spliced: list[SplicedPhrase] | None = None) -> tuple[dict, int]:
    """Write every manifest, the codec-fit audio and the sample prompt; `spliced` phrases go after
    the stage-3 TTS lines of the synthesised texts.

    Returns:
        ({file name relative to `out`: line count}, samples left out for a failed clip).
    """
    lines = WorldLines(plan, clips, cfg.seed)
    asr_train = lines.asr("train")
    test = {"asr": lines.asr("test"), "vqa": lines.spoken_qa("test", task="vqa") + lines.text_qa("test"),
            "tts": lines.tts("test")}
    manifests = {
        "stage1_train.jsonl": asr_train,
        "stage2_train.jsonl": _shuffled(lines.spoken_qa("train") + lines.text_qa("train")
                                        + asr_train[: cfg.stage2_asr], cfg.seed, "stage2"),
        "stage3_tts.jsonl": lines.tts("train", cfg.tts_repeats) + lines.tts_spliced(spliced or []),
        "stage3_s2s.jsonl": lines.spoken_qa("train", speech_target=True),
        "val_asr.jsonl": lines.asr("val"),
        "val_vqa.jsonl": lines.spoken_qa("val", task="vqa") + lines.text_qa("val"),
        "val_tts.jsonl": lines.tts("val"),
        "val_s2s.jsonl": lines.spoken_qa("val", speech_target=True),
        **{f"test_{task}.jsonl": rows for task, rows in test.items()},
        # `nexus-o eval --data DIR/test` reads DIR/test/<task>.jsonl.
        **{f"test/{task}.jsonl": _rebased(rows, "../") for task, rows in test.items()},
    }
    counts = {name: write_jsonl(out / name, rows) for name, rows in manifests.items()}
    counts["codec_fit/audio.jsonl"] = _write_codec_fit(out, plan, cfg, clips)
    if test["vqa"] and "audios" in test["vqa"][0]:
        sample = test["vqa"][0]
        prompt = {"messages": sample["messages"][:-1], "images": sample["images"], "audios": sample["audios"]}
        (out / "sample_prompt.json").write_text(json.dumps(prompt, indent=2, ensure_ascii=False) + "\n")
    return counts, lines.dropped


def _write_codec_fit(out: Path, plan: WorldPlan, cfg: TinyWorldConfig, clips: dict[str, str]) -> int:
    """codec_fit/: joe's clips of the training texts and the first `codec_fit_espeak` training ASR
    clips (training audio only: the codec never sees a held-out recording), as WAV files (hard
    links where the filesystem allows, else copies) and as a list, codec_fit/audio.jsonl."""
    folder = out / "codec_fit"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    target = sorted(c for c in (plan.target_clip(t) for t in set(plan.tts_texts["train"])) if c in clips)
    espeak = [clip_id for clip_id, _ in plan.asr["train"] if clip_id in clips][: cfg.codec_fit_espeak]
    for clip_id in target + espeak:
        try:
            os.link(out / clips[clip_id], folder / f"{clip_id}.wav")
        except OSError:
            shutil.copyfile(out / clips[clip_id], folder / f"{clip_id}.wav")
    return write_jsonl(folder / "audio.jsonl", [{"audio": f"{clip_id}.wav"} for clip_id in target + espeak])
