"""The main job: `nexus-o quickstart` runs the whole pipeline on the tiny world, on a CPU.

Steps (each skipped when its output already exists, so a killed run picks up where it was):
1. data: the tiny world's manifests and media (`nexus_o.synth.tiny_world`);
2. codec: fit the built-in codec's codebooks on speech of the world;
3. targets: encode the stage-3 target speech into codec codes;
4. model: the tiny world's model (Whisper-base encoder, codec-matched speech decoder);
5-7. train stages 1, 2, 3 with `configs/tiny/*.yaml`;
8. evaluate through the evaluation runner on the held-out splits (ASR WER on unseen voices, also
   split by test texts seen / unseen in training; VQA accuracy on unseen images; TTS WER on word
   pairs never spoken in training) and put each TTS figure beside its judge's floor: two judges
   (Whisper tiny.en, multilingual Whisper base), two normalisations (Seed-TTS, Whisper's);
9. answer a sample prompt (an image and a spoken question) with text and a WAV file.
`report.json` holds the figures, the wall time and the paths.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console

from nexus_o.bundle.ct2_whisper import converted_whisper_base
from nexus_o.bundle.loading import CODEC_SUBDIR, load_model
from nexus_o.bundle.tiny_world import tiny_world_model
from nexus_o.codecs.builtin import default_codec_dir, fit_builtin_codec
from nexus_o.codecs.registry import load_codec
from nexus_o.config.loader import load_config
from nexus_o.eval.metrics.asr import error_rate
from nexus_o.eval.reference_speech import judge_table
from nexus_o.eval.runner import run_eval
from nexus_o.speech.asr import get_asr_backend
from nexus_o.synth.tiny_world.build import build_tiny_world
from nexus_o.train.config import TrainConfig
from nexus_o.train.run import run_training
from nexus_o.train.trainer import save_final

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "tiny"
STAGES = ("stage1_align", "stage2_sft", "stage3_speech")
DEFAULT_MINUTES = 15.0
TTS_JUDGE = "whisper-tiny.en"  # transcribes the model's speech and the reference recordings (tts_wer)
SECOND_JUDGE = "whisper-base"  # a larger, multilingual Whisper: the second column of the judge table
CODEC_ENTRIES = 512  # per codebook of the built-in codec (`fit_builtin_codec`'s default)
CODEC_FRAMES_PER_SECOND = 22050 / 256  # its mel frames (HiFi-GAN's rate and hop)
MIN_FRAMES_PER_ENTRY = 8  # fewer, and k-means gives codebooks that memorise the clips
HEADLINE = ("asr_wer", "asr_wer_seen_texts", "asr_wer_unseen_texts", "vqa_accuracy", "tts_wer", "tts_wer_reference",
            "tts_wer_whisper_norm", "tts_wer_reference_whisper_norm", "tts_wer_whisper_base",
            "tts_wer_reference_whisper_base", "minutes")


def _stage_config(stage: str, out: Path, model_path: Path, data: Path, scale: float, steps: int | None = None):
    """The stage's YAML from configs/tiny, pointed at this run's folders, steps scaled (or, with
    `steps`, set to that total, shared by the phases as the YAML shares its own)."""
    path = CONFIGS / f"{stage}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"stage config {path} is missing; run the quickstart from a nexus-o source checkout")
    cfg = load_config(TrainConfig, path)
    if steps is not None:
        scale = steps / sum(max(phase.max_steps, 1) for phase in cfg.phases)
    phases = []
    for phase in cfg.phases:
        train, evals = ([str(data / Path(p).name) for p in paths] for paths in (phase.train, phase.eval))
        steps = max(1, round(phase.max_steps * scale)) if phase.max_steps > 0 else phase.max_steps
        phases.append(phase.model_copy(update={"train": train, "eval": evals, "max_steps": steps}))
    model = cfg.model.model_copy(update={"path": str(model_path), "preset": None})
    eval_steps = max(1, round(cfg.eval_steps * scale)) if cfg.eval_steps else cfg.eval_steps
    return cfg.model_copy(update={"model": model, "phases": phases, "output_dir": str(out / stage),
                                  "resume": "auto", "eval_steps": eval_steps})


def _encode_targets(codec, data: Path, console: Console) -> None:
    """Stage-3 training and validation manifests with codes: each `speech.audio` target becomes
    `speech.codes` (.npy), words kept."""
    import soundfile as sf
    import torch
    from tqdm import tqdm

    for name in ("stage3_tts", "stage3_s2s", "val_tts", "val_s2s"):
        src, dst = data / f"{name}.jsonl", data / f"{name}.codes.jsonl"
        if dst.is_file():
            continue
        rows = [json.loads(line) for line in src.read_text().splitlines() if line.strip()]
        codes_dir = data / "codes"
        codes_dir.mkdir(exist_ok=True)
        for i, row in enumerate(tqdm(rows, desc=f"encoding {name} targets")):
            wav, rate = sf.read(data / row["speech"]["audio"], dtype="float32")
            codes = codec.encode(torch.from_numpy(wav)[None, None], sample_rate=rate)[0].numpy()
            target = codes_dir / f"{name}-{i:05d}.npy"
            np.save(target, codes.astype(np.int64))
            words = row["speech"].get("words")  # spliced phrases' word timings (the pointer alignment)
            row["speech"] = {"codes": str(target.relative_to(data)), **({"words": words} if words else {})}
        tmp = dst.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        tmp.replace(dst)
    console.print("stage-3 targets encoded")


def _answer_sample(omni, data: Path, out: Path) -> dict:
    """Answer the world's sample prompt (an image and a spoken question) with text and a WAV."""
    import soundfile as sf

    sample = json.loads((data / "sample_prompt.json").read_text())
    reply = omni.chat(sample, modalities=["text", "audio"], base_dir=data)
    wav_path = out / "answer.wav"
    sf.write(wav_path, reply.audio, reply.sample_rate)
    return {"prompt": sample, "answer_text": reply.text, "answer_wav": str(wav_path)}


def _fit_codec(paths: list[Path], codec_dir: Path, seed: int, console: Console) -> None:
    """Fit the built-in codec on the world's training speech into `codec_dir`; a world with too
    little speech for the codebooks (the small one) gets the shipped default codec instead, which
    was fitted on other sentences (benchmarks/codec_roundtrip.py), so no held-out recording is in it."""
    import soundfile as sf

    frames = sum(sf.info(p).duration for p in paths) * CODEC_FRAMES_PER_SECOND
    needed = MIN_FRAMES_PER_ENTRY * CODEC_ENTRIES
    if frames >= needed:
        fit_builtin_codec(paths, seed=seed, max_frames=40_000, iters=8).save_pretrained(codec_dir)
        source = {"source": "fitted", "clips": len(paths), "frames": round(frames)}
    else:
        console.print(f"codec: {len(paths)} training clips give {frames:.0f} mel frames, too few for "
                      f"{CODEC_ENTRIES}-entry codebooks (k-means wants {needed}); using the shipped default codec")
        load_codec(default_codec_dir()).save_pretrained(codec_dir)
        source = {"source": "shipped default (fitted on other sentences)", "clips": len(paths), "frames": round(frames)}
    (codec_dir / "fitted_on.json").write_text(json.dumps(source, indent=1))


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _judge_speech(data: Path, eval_dir: Path, results: dict, judge) -> dict:
    """The tts judge table (`nexus_o.eval.reference_speech.judge_table`), cached in eval/tts_judges.json."""
    cached = eval_dir / "tts_judges.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    records = _read_jsonl(eval_dir / results["tasks"]["tts"]["predictions"])
    speech = {r["line"]: eval_dir / r["audio"] for r in records}
    known = {TTS_JUDGE: {r["line"]: r["prediction"] for r in records}}
    judges = {TTS_JUDGE: judge, SECOND_JUDGE: get_asr_backend(SECOND_JUDGE)}
    table = judge_table(data / "test" / "tts.jsonl", speech, judges, known=known)
    cached.write_text(json.dumps(table, indent=1, ensure_ascii=False))
    return table


def _asr_seen_unseen(data: Path, eval_dir: Path, results: dict) -> dict:
    """ASR WER on the test texts heard in training (from other voices) and on those never heard."""
    unseen = set(json.loads((data / "world.json").read_text())["asr_test_texts"]["unseen_ids"])
    refs = {row["id"]: row["messages"][-1]["content"] for row in _read_jsonl(data / "test" / "asr.jsonl")}
    records = _read_jsonl(eval_dir / results["tasks"]["asr"]["predictions"])
    out = {}
    for name, keep in (("asr_wer_seen_texts", lambda i: i not in unseen), ("asr_wer_unseen_texts", lambda i: i in unseen)):
        pairs = [(refs[r["id"]], r["prediction"]) for r in records if keep(r["id"])]
        out[name] = round(error_rate(*zip(*pairs), "en").score, 4) if pairs else None
    return out


def _score(results: dict, task: str) -> float | None:
    """The runner's English score of `task` as a fraction (WER, accuracy); None when skipped."""
    entry = results["tasks"][task]
    if entry.get("status") != "ok":
        return None
    score = next(s for s in entry["scores"] if s["lang"] == "en")
    return round(score["score"] / 100 if score.get("unit") == "%" else score["score"], 4)


def run_quickstart(out: Path, minutes: float = DEFAULT_MINUTES, seed: int = 0, size: str = "default",
                   steps: dict[str, int] | None = None) -> dict:
    """Run every step into `out`; returns (and writes) the report. `minutes` scales the training
    steps; `steps` ({stage: total steps}) sets a stage's length instead.

    Raises:
        ValueError: `steps` names an unknown stage or a count below 1.
    """
    import torch

    steps = dict(steps or {})
    if bad := {k: v for k, v in steps.items() if k not in STAGES or v < 1}:
        raise ValueError(f"steps {bad}: each key must be one of {', '.join(STAGES)} with a count >= 1")

    console = Console()
    torch.set_flush_denormal(True)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    timings: dict[str, float] = {}

    def step(name: str):
        timings[name] = round(time.perf_counter() - start - sum(timings.values()), 1)
        console.rule(f"[bold]{name}[/] done ({timings[name]:.0f} s)")

    data = out / "data"
    console.rule("[bold]1/9 data: the tiny world")
    build_tiny_world(data, seed=seed, size=size)
    step("data")

    console.rule("[bold]2/9 codec: fitting the built-in codec")
    codec_dir = out / "codec"
    if not (codec_dir / "fitted_on.json").is_file():  # written last: the codec is complete
        _fit_codec(sorted((data / "codec_fit").glob("*.wav")), codec_dir, seed, console)
    codec = load_codec(codec_dir)
    step("codec")

    console.rule("[bold]3/9 targets: speech codes for stage 3")
    _encode_targets(codec, data, console)
    step("targets")

    console.rule("[bold]4/9 model: Whisper-base encoder, tiny LLM, speech decoder")
    init = out / "init"
    if not (init / "config.json").is_file():
        save_final(tiny_world_model(codec, converted_whisper_base(), seed=seed), init)
    step("model")

    scale = minutes / DEFAULT_MINUTES
    model_path = init
    for i, stage in enumerate(STAGES, start=5):
        console.rule(f"[bold]{i}/9 train {stage}")
        cfg = _stage_config(stage, out, model_path, data, scale, steps.get(stage))
        model_path = run_training(cfg, console)
        step(stage)

    console.rule("[bold]8/9 evaluate")
    omni = load_model(model_path).eval()
    judge = get_asr_backend(TTS_JUDGE)  # loads on first use; one model for both scores below
    results = run_eval(omni, ["asr", "vqa", "tts"], data / "test", out / "eval", asr_backend=judge)
    judged = _judge_speech(data, out / "eval", results, judge)
    step("eval")

    console.rule("[bold]9/9 answer a sample prompt")
    answer = _answer_sample(omni, data, out)
    step("answer")

    first, second = judged[TTS_JUDGE], judged[SECOND_JUDGE]
    report = {
        "asr_wer": _score(results, "asr"), **_asr_seen_unseen(data, out / "eval", results),
        "vqa_accuracy": _score(results, "vqa"),
        # the judge (Whisper tiny.en) on the model's speech and on the real voice, Seed-TTS protocol ...
        "tts_wer": first["seed-tts"]["model"], "tts_wer_reference": first["seed-tts"]["reference"],
        # ... and with Whisper's normaliser (numerals and number words alike)
        "tts_wer_whisper_norm": first["seed-tts-whisper"]["model"],
        "tts_wer_reference_whisper_norm": first["seed-tts-whisper"]["reference"],
        "tts_judges": {name: judged[name] for name in (TTS_JUDGE, SECOND_JUDGE)},
        "tts_wer_whisper_base": second["seed-tts-whisper"]["model"],
        "tts_wer_reference_whisper_base": second["seed-tts-whisper"]["reference"],
        "minutes": round((time.perf_counter() - start) / 60, 2),
        "checkpoint": str(model_path), "codec": str(model_path / CODEC_SUBDIR),
        "codec_fitted_on": json.loads((codec_dir / "fitted_on.json").read_text()),
        "answer_text": answer["answer_text"], "answer_wav": answer["answer_wav"],
        "loss_plots": [str(out / s / "loss.png") for s in STAGES],
        "eval": str(out / "eval" / "results.json"), "seconds_per_step": timings, "seed": seed, "size": size,
        "minutes_budget": minutes, "steps": steps,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    console.print_json(json.dumps({k: report[k] for k in HEADLINE}))
    console.print(f"report: {out / 'report.json'}")
    return report
