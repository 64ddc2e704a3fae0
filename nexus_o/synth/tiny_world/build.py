"""Build the tiny world (`nexus-o synth tiny-world --out DIR`): images, speech, manifests.

Steps: plan (pure) -> render images (PIL) -> synthesise every clip through the sharded,
resumable runner (espeak-ng pool speakers for input speech, piper `joe` for target speech; an ASR
round trip with Whisper tiny.en on a seeded subset, whose pass rates go to world.json: the subset
measures the voices, it does not filter them) -> splice multi-word phrases from joe's word clips,
with word timings (`splice.py`) -> write the manifests (`manifests.py`).

Layout of DIR (every manifest's paths are relative to its own folder):
    images/{train,val,test}/*.png
    clips/                      the runner's folder: audio/shard-XXXXX/*.wav, manifest.jsonl (a line
                                a clip: id, audio, text, speaker, seconds, ASR check), summary.json;
                                spliced/splice-XXXXX.wav: joe's spliced phrases (not a runner output)
    stage1_train.jsonl          ASR
    stage2_train.jsonl          image + spoken question -> answer, image + written question, some ASR
    stage3_tts.jsonl            text -> joe's speech {"audio": wav} (the main job adds codes); then the
                                spliced phrases, {"audio": wav, "words": [{"word", "start", "end"}, ...]}
    stage3_s2s.jsonl            image + spoken question -> answer text + joe's speech
    val_{asr,vqa,tts,s2s}.jsonl
    test_{asr,vqa,tts}.jsonl    held-out voices (asr, vqa) and images (vqa); tts: word pairs never spoken
                                in training (rules: `splits.py`, checked before world.json is written)
    test/{asr,vqa,tts}.jsonl    the same, laid out for `nexus-o eval --data DIR/test`
    codec_fit/                  training clips only (joe's and some espeak) to fit the codec, + audio.jsonl
    sample_prompt.json          an image and a spoken question (user turn only)
    world.json                  vocabulary, speakers, splits, counts (spliced phrases too), ASR pass rates,
                                test ASR texts seen / unseen in training, what the split checks covered

Everything is a function of the config (seed included): the same files, byte for byte. A killed
build, started again, redoes only the unfinished clip shards.
"""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

from tqdm.auto import tqdm

from nexus_o.synth.config import TinyWorldConfig, tiny_world_config
from nexus_o.synth.pipeline import resample
from nexus_o.synth.reproducible import ReproducibleTTS
from nexus_o.synth.runner import RunSummary, ShardSink, run_shards
from nexus_o.synth.tiny_world.images import write_image
from nexus_o.synth.tiny_world.manifests import write_manifests
from nexus_o.synth.tiny_world.plan import WorldPlan, clip_items, plan_world
from nexus_o.synth.tiny_world.splice import SplicedPhrase, splice_phrases
from nexus_o.synth.tiny_world.splits import check_plan, check_world
from nexus_o.speech.tts import Speaker, SynthesisError
from nexus_o.speech.asr import get_asr_backend
from nexus_o.speech.tts import TTSRouter, get_tts_backend
from nexus_o.speech.tts.piper import PiperBackend
from nexus_o.synth.verify import ASRVerifier


class ClipProcessor:
    """Runner processor: synthesise one planned clip, check it by ASR if it is marked, write the WAV."""

    def __init__(self, verify_asr: str | None, cpu_threads: int = 1):
        # piper's generator noise cannot be seeded, so joe speaks with both noise scales at 0.
        router = TTSRouter({"espeak": get_tts_backend("espeak"), "piper": PiperBackend(noise_w_scale=0.0)})
        self.tts = ReproducibleTTS(router)
        self.verifier = ASRVerifier(get_asr_backend(verify_asr, cpu_threads=cpu_threads)) if verify_asr else None

    def process(self, index: int, item: dict, sink: ShardSink) -> None:
        sink.stats.stages["input"] += 1
        speaker = Speaker(**item["speaker"])
        try:
            wav, rate = self.tts.synthesize(item["text"], speaker)
        except SynthesisError as err:
            sink.reject(index, "tts", "tts_failed", detail=err.reason, id=item["id"], speaker=speaker.name)
            return
        sink.stats.stages["synthesized"] += 1
        checked = None
        if item["verify"] and self.verifier is not None:
            result = self.verifier.check(wav, rate, item["text"], "en")
            sink.stats.asr_check(self.verifier.asr["en"].name, f"{speaker.backend}:{speaker.voice}", result.passed)
            checked = {"passed": result.passed, "wer": round(result.score, 4), "transcript": result.transcript}
        wav, rate = resample(wav, rate, item["rate"])
        ref = sink.write_audio(f"{item['id']}.wav", wav, rate)
        sink.add({"id": item["id"], "audio": ref, "text": item["text"], "speaker": speaker.name,
                  "seconds": round(len(wav) / rate, 4), "verify": checked})


def _world_json(plan: WorldPlan, cfg: TinyWorldConfig, counts: dict, dropped: int, clips: RunSummary,
                spliced: list[SplicedPhrase], skipped: int) -> dict:
    summary = clips.to_dict()
    return {
        "seed": cfg.seed, "config": cfg.model_dump(mode="json", exclude={"workers", "engine"}),
        "vocab": {"colours": list(plan.vocab.colours), "shapes": list(plan.vocab.shapes),
                  "digits": list(plan.vocab.digit_words), "answers": list(plan.vocab.words)},
        "speakers": {"train": [s.name for s in plan.train_speakers], "test": [s.name for s in plan.test_speakers],
                     "target": plan.target.name},
        "images": {split: len(images) for split, images in plan.images.items()},
        "questions": {split: len(qa) for split, qa in plan.qa.items()},
        "tts_texts": plan.tts_texts,
        "tts_spliced": {"planned": len(plan.tts_spliced), "written": len(spliced), "skipped_missing_word": skipped},
        "manifests": counts,
        "clips": {"planned": clips.items, "written": clips.lines["manifest"], "failed": clips.lines["rejects"],
                  "samples_dropped": dropped, "audio_hours": summary["audio_hours"]},
        "verification": summary["asr_pass_rate"],
        "asr_test_texts": _asr_test_texts(plan),
    }


def _asr_test_texts(plan: WorldPlan) -> dict:
    """Test ASR texts seen and unseen in training (a closed vocabulary: most test texts were heard
    in training from other voices), so ASR can be scored on both separately."""
    trained = {text for _, text in plan.asr["train"]}
    unseen = [clip_id for clip_id, text in plan.asr["test"] if text not in trained]
    return {"seen": len(plan.asr["test"]) - len(unseen), "unseen": len(unseen), "unseen_ids": unseen}


def build_world(out_dir: str | Path, cfg: TinyWorldConfig, progress: bool = True) -> dict:
    """Build (or finish building) the world of `cfg` in `out_dir`.

    Returns:
        world.json's content plus "seconds" per step and "clips_per_second" (timings are
        returned, not written, so that the files stay identical from run to run).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    plan = plan_world(cfg)
    seconds["plan"] = time.perf_counter() - start
    start = time.perf_counter()
    images = [image for split in plan.images.values() for image in split]
    for image in tqdm(images, desc="images", unit="img", disable=not progress):
        write_image(image, out, cfg.image_size)
    seconds["images"] = time.perf_counter() - start
    start = time.perf_counter()
    summary = run_shards(
        clip_items(plan, cfg.seed), functools.partial(ClipProcessor, cfg.verify_asr if cfg.verify_clips else None),
        # tts_spliced only matters after the clips: changing it must not invalidate them.
        out / "clips", shard_size=cfg.shard_size,
        fingerprint=cfg.model_dump(mode="json", exclude={"workers", "engine", "tts_spliced"}),
        engine=cfg.engine, workers=cfg.workers, progress=progress, desc="clips",
    )
    clips = {}
    for raw in (out / "clips" / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(raw)
        clips[record["id"]] = f"clips/{record['audio']}"
    seconds["clips"] = time.perf_counter() - start
    start = time.perf_counter()
    spliced, skipped = splice_phrases(out, plan, clips, cfg.seed, progress)
    seconds["splice"] = time.perf_counter() - start
    start = time.perf_counter()
    counts, dropped = write_manifests(out, plan, cfg, clips, spliced)
    world = _world_json(plan, cfg, counts, dropped, summary, spliced, skipped)
    world["splits_checked"] = {"plan": check_plan(plan), "files": check_world(out)}  # raises on a leak
    tmp = out / "world.json.tmp"
    tmp.write_text(json.dumps(world, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out / "world.json")
    seconds["manifests"] = time.perf_counter() - start
    seconds["total"] = sum(seconds.values())
    return {**world, "seconds": {k: round(v, 2) for k, v in seconds.items()},
            "clips_per_second": round(summary.items / max(seconds["clips"], 1e-9), 1)}


def build_tiny_world(out_dir: str | Path, seed: int = 0, size: str = "default", config: str | Path | None = None,
                     overrides: list[str] | None = None, progress: bool = True) -> dict:
    """`build_world` with the preset `size` ("small" | "default"), an optional YAML and overrides.

    Raises:
        ConfigError: unknown size or bad config. RunMismatchError: `out_dir` holds another world.
    """
    cfg = tiny_world_config(size, None if config is None else str(config), [f"seed={seed}", *(overrides or [])])
    return build_world(out_dir, cfg, progress)
