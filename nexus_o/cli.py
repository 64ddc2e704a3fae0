"""`nexus-o <command>`: one plain typed function per command.

Imports of heavy modules stay inside the commands so that `nexus-o --help` is instant.
Command groups (`codec`, `data`, `synth`, `align`) are typer sub-apps; each command is a
thin wrapper over a library function that does the work and can be called from Python.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="NEXUS-O omni-modal pipeline.")
codec_app = typer.Typer(no_args_is_help=True, help="Speech codecs: round trips and fitting.")
data_app = typer.Typer(no_args_is_help=True, help="Training manifests.")
synth_app = typer.Typer(no_args_is_help=True, help="Audio data synthesis.")
align_app = typer.Typer(no_args_is_help=True, help="Representational alignment analysis.")
app.add_typer(codec_app, name="codec")
app.add_typer(data_app, name="data")
app.add_typer(synth_app, name="synth")
app.add_typer(align_app, name="align")


@app.command()
def quickstart(
    out: Path = typer.Option(Path("runs/quickstart"), help="Output folder (a killed run resumes from it)."),
    minutes: float = typer.Option(15.0, help="Training budget: the stages' step counts scale with it."),
    seed: int = typer.Option(0, help="Random seed of the world and the model."),
    size: str = typer.Option("default", help="Tiny-world size: default or small."),
    steps: Optional[list[str]] = typer.Option(
        None, help="STAGE=N: train that stage for N steps in all instead of scaling by --minutes "
                   "(stage1_align, stage2_sft, stage3_speech); repeatable."),
) -> None:
    """Run the whole pipeline on the built-in tiny world (CPU): data, codec, 3 stages, eval, answer."""
    from nexus_o.quickstart import STAGES, run_quickstart

    totals = {}
    for spec in steps or []:
        stage, sep, count = (part.strip() for part in spec.partition("="))
        if not sep or stage not in STAGES or not count.isdigit() or int(count) < 1:
            typer.echo(f"error: --steps {spec!r}: expected STAGE=N with N >= 1 and STAGE one of "
                       f"{', '.join(STAGES)}", err=True)
            raise typer.Exit(2)
        totals[stage] = int(count)
    run_quickstart(out, minutes=minutes, seed=seed, size=size, steps=totals)


@app.command()
def train(
    config: Path = typer.Option(..., "--config", "-c", help="A stage config (YAML), e.g. configs/tiny/stage1_align.yaml."),
    overrides: Optional[list[str]] = typer.Argument(None, help="key=value overrides, e.g. optim.lr=1e-4."),
) -> None:
    """Train one stage (stage1_align, stage2_sft or stage3_speech) as its config says."""
    from nexus_o.config.loader import ConfigError, load_config
    from nexus_o.train.config import TrainConfig
    from nexus_o.train.run import run_training

    try:
        cfg = load_config(TrainConfig, config, overrides or [])
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    run_training(cfg)


@app.command()
def version() -> None:
    """Print the nexus-o version."""
    from nexus_o.version import __version__

    typer.echo(__version__)


@app.command("convert-whisper")
def convert_whisper(
    src: str = typer.Argument(..., help="CTranslate2 Whisper folder, or whisper-base / whisper-tiny.en."),
    out: Path = typer.Argument(..., help="Output Hugging Face folder (replaced if it exists)."),
    full: bool = typer.Option(False, "--full", help="Convert the decoder too (whole model + tokenizer)."),
) -> None:
    """Convert CTranslate2 Whisper weights (faster-whisper's) into transformers' Whisper format."""
    from nexus_o.bundle.ct2_whisper import convert_ct2_whisper, ct2_source

    try:
        folder = convert_ct2_whisper(ct2_source(src), out, encoder_only=not full)
    except (ValueError, FileNotFoundError) as err:  # CT2FormatError is a ValueError
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    typer.echo(f"wrote {'WhisperForConditionalGeneration' if full else 'Whisper encoder'} to {folder}")


@app.command()
def score(
    metric: str = typer.Argument(..., help="wer | cer | bleu | sqa"),
    refs: Path = typer.Option(
        ..., help="References, one a line (sqa: answers split by ' | ' or a JSON list)."
    ),
    hyps: Path = typer.Option(..., help="Hypotheses / model outputs, one a line."),
    lang: Optional[str] = typer.Option(
        None, help="en | zh (wer is en, cer is zh; bleu: target language)."
    ),
    protocol: str = typer.Option(
        "default",
        help="default (corpus) | seed-tts (mean per utterance; wer/cer) | seed-tts-whisper (the same, Whisper's normaliser).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the score and its counts as JSON."),
) -> None:
    """Score hypotheses against references with the field's normalisers (SPEC §4)."""
    import json

    from nexus_o.eval.metrics import score_files

    try:
        result = score_files(metric, refs, hyps, lang=lang, protocol=protocol)
    except (ValueError, FileNotFoundError) as err:  # MetricInputError is a ValueError
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    typer.echo(json.dumps(result.to_dict(), ensure_ascii=False) if json_out else result.summary())


@app.command("eval")
def evaluate(
    model: str = typer.Option(..., "--model", help="A checkpoint folder or a preset name (tiny)."),
    tasks: Optional[str] = typer.Option(None, "--tasks",
                                        help="Comma-separated tasks (asr, s2tt, sqa, tts, vqa; default all), each read "
                                             "from DATA/<task>.jsonl, or task=PATH pairs."),
    data: Optional[Path] = typer.Option(None, "--data", help="Folder holding the <task>.jsonl benchmark manifests."),
    out: Path = typer.Option(..., "--out", help="Output folder: predictions/ (resumable cache), results.json, results.md."),
    suite: Optional[str] = typer.Option(None, "--suite", help="'paper': every benchmark of the paper's tables found "
                                                              "under --data-root (docs/eval-suite.md)."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Suite: the folder holding the benchmarks."),
    benchmarks: Optional[str] = typer.Option(None, "--benchmarks", help="Suite: a comma-separated subset of benchmarks."),
    whisper_large_v3: Optional[Path] = typer.Option(None, "--whisper-large-v3",
                                                    help="Suite: Whisper-large-v3 folder, Seed-TTS's English judge."),
    paraformer_zh: Optional[Path] = typer.Option(None, "--paraformer-zh",
                                                 help="Suite: FunASR Paraformer-zh folder, Seed-TTS's Chinese judge."),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="Items per generation batch."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Evaluate the first N items of each task."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", min=1,
                                                 help="Reply length limit in tokens (default 64; suite: 256)."),
    asr_backend: str = typer.Option("whisper-tiny.en", "--asr-backend", help="ASR that transcribes the model's speech (tts)."),
) -> None:
    """Evaluate a model on benchmark manifests, or run the paper's suite, and report beside the paper (SPEC §4)."""
    from rich.console import Console

    try:
        if suite is not None:
            _eval_suite(model, out, suite, data_root, benchmarks, whisper_large_v3, paraformer_zh, batch_size, limit,
                        max_new_tokens or 256, tasks_or_data=(tasks, data))
            return
        if data_root is not None or benchmarks or whisper_large_v3 or paraformer_zh:
            raise ValueError("--data-root, --benchmarks, --whisper-large-v3 and --paraformer-zh belong to --suite paper")
        from nexus_o.eval.report import console_table
        from nexus_o.eval.runner import run_eval

        results = run_eval(model, tasks or "asr,s2tt,sqa,tts,vqa", data, out, batch_size=batch_size, limit=limit,
                           max_new_tokens=max_new_tokens or 64, asr_backend=asr_backend)
    except (ValueError, FileNotFoundError) as err:  # EvalError, ManifestError are ValueErrors
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    Console().print(console_table(results))
    typer.echo(f"wrote {out / 'results.json'} and {out / 'results.md'}")


def _eval_suite(model, out, suite, data_root, benchmarks, whisper_large_v3, paraformer_zh, batch_size, limit,
                max_new_tokens, tasks_or_data) -> None:
    from rich.console import Console
    from rich.table import Table

    from nexus_o.eval.suite.report import summary_rows
    from nexus_o.eval.suite.run import run_suite

    if suite != "paper":
        raise ValueError(f"unknown suite {suite!r}; expected 'paper'")
    if any(v is not None for v in tasks_or_data):
        raise ValueError("--tasks and --data do not apply to --suite paper (it finds its benchmarks under --data-root)")
    if data_root is None:
        raise ValueError("--suite paper needs --data-root DIR (layout in docs/eval-suite.md)")
    results = run_suite(model, data_root, out, whisper_large_v3=whisper_large_v3, paraformer_zh=paraformer_zh,
                        benchmarks=benchmarks, limit=limit, batch_size=batch_size, max_new_tokens=max_new_tokens)
    table = Table(title=f"nexus-o eval --suite paper: {results['model']}")
    for column in ("benchmark", "this run", "NEXUS-O (paper)", "judge", "status"):
        table.add_column(column, overflow="fold")
    for row in summary_rows(results):
        table.add_row(row[0], row[3], row[4], row[6], row[8])
    Console().print(table)
    typer.echo(f"wrote {out / 'suite.json'} and {out / 'suite.md'}")


@codec_app.command("roundtrip")
def codec_roundtrip(
    in_wav: Path = typer.Argument(..., help="Input audio (any rate; channels are averaged)."),
    out_wav: Path = typer.Argument(..., help="Where to write the decoded audio (at the codec's rate)."),
    codec: str = typer.Option("builtin", "--codec", help="Codec name (builtin, firefly) or a saved codec folder."),
) -> None:
    """Encode IN_WAV to codes, decode them back and write OUT_WAV."""
    from nexus_o.codecs.tools import roundtrip_file

    try:
        report = roundtrip_file(in_wav, out_wav, codec)
    except (ValueError, FileNotFoundError) as err:  # CodecError is a ValueError
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    typer.echo(
        f"{report.frames} frames x {report.codebooks} codebooks at {report.frame_rate:.2f} frames/s; "
        f"{report.input_seconds:.2f} s in, {report.output_seconds:.2f} s out ({report.sample_rate} Hz) -> {out_wav}"
    )


@codec_app.command("fit")
def codec_fit(
    audio: Path = typer.Option(..., "--audio", help="Folder of audio files or a JSONL manifest (audios/audio fields)."),
    out: Path = typer.Option(..., "--out", help="Folder to save the fitted built-in codec in."),
    codebooks: int = typer.Option(8, "--codebooks", help="Residual codebooks K."),
    size: int = typer.Option(512, "--size", help="Entries per codebook."),
    iters: int = typer.Option(10, "--iters", help="Lloyd iterations per codebook."),
    seed: int = typer.Option(0, "--seed", help="Random seed (k-means++ and frame sampling)."),
) -> None:
    """Fit the built-in codec's residual codebooks on speech and save the codec."""
    from nexus_o.codecs.tools import fit_codec_from_source

    try:
        codec, files = fit_codec_from_source(audio, out, codebooks, size, iters, seed)
    except (ValueError, FileNotFoundError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    typer.echo(f"fitted {codec.num_codebooks} x {codec.codebook_size} codebooks on {files} files -> {out}")


@data_app.command("validate")
def data_validate(
    manifest: Path = typer.Argument(..., help="JSONL manifest to check."),
    no_media: bool = typer.Option(False, "--no-media", help="Check JSON and schema only, not the media files."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check every manifest line (schema, tag counts, media decode); exit 1 if any line is bad."""
    import json

    from nexus_o.data.manifest import validate_manifest

    try:
        report = validate_manifest(manifest, check_media=not no_media, progress=not json_out)
    except FileNotFoundError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    typer.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) if json_out else report.format())
    raise typer.Exit(code=0 if report.ok else 1)


@synth_app.command("filter")
def synth_filter(
    texts: Path = typer.Argument(..., help="Text file, one text a line (UTF-8)."),
    out: Path = typer.Option(..., help="JSONL of kept texts: {line, text}."),
    rejects: Path = typer.Option(..., help="JSONL of rejected lines: {line, text, reason}."),
) -> None:
    """Apply the paper's text filters (length, non-text ratio, URL, path, LaTeX; SPEC §3)."""
    from nexus_o.synth.filters import filter_file

    try:
        summary = filter_file(texts, out, rejects)
    except FileNotFoundError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    typer.echo(f"read {summary.total}  kept {summary.kept}")
    for reason, count in sorted(summary.rejected.items()):
        typer.echo(f"rejected {reason}: {count}")


@synth_app.command("run")
def synth_run(
    config: Path = typer.Option(..., "--config", "-c", help="A synthesis config (YAML), e.g. configs/synth/text_to_speech.yaml."),
    overrides: Optional[list[str]] = typer.Argument(None, help="key=value overrides, e.g. shard_size=32 verify=null."),
    engine: Optional[str] = typer.Option(None, "--engine", help="local (process pool on all cores) | ray (Ray Data)."),
) -> None:
    """Sharded, resumable synthesis (the issue's `nexus-o synth --config FILE`): text -> speech or speech -> text.

    Writes manifest.jsonl, rejects.jsonl, review.jsonl and summary.json under the config's
    output_dir. A killed run, started again with the same command, skips finished shards.
    """
    from nexus_o.config.loader import ConfigError, load_config
    from nexus_o.synth.config import SynthRunConfig
    from nexus_o.synth.pipeline import run_synthesis
    from nexus_o.synth.runner import RunMismatchError
    from nexus_o.speech.tts import BackendUnavailableError

    try:
        cfg = load_config(SynthRunConfig, config, [*(overrides or []), *([f"engine={engine}"] if engine else [])])
        summary = run_synthesis(cfg)
    except (ConfigError, RunMismatchError, FileNotFoundError, BackendUnavailableError, ImportError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    typer.echo(summary.format())


@synth_app.command("tiny-world")
def synth_tiny_world(
    out: Path = typer.Option(..., "--out", help="Folder to build the world in (an unfinished build there is resumed)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default: the config's, 0)."),
    size: str = typer.Option("default", "--size", help="small (tests, seconds) | default (the main job's data)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Tiny-world YAML applied over the size preset."),
    engine: Optional[str] = typer.Option(None, "--engine", help="local | ray."),
) -> None:
    """Generate the tiny tri-modal world: images, spoken words and questions, joe's answers, manifests."""
    from nexus_o.config.loader import ConfigError
    from nexus_o.synth.config import tiny_world_config
    from nexus_o.synth.runner import RunMismatchError
    from nexus_o.synth.tiny_world import build_world

    overrides = [*([f"seed={seed}"] if seed is not None else []), *([f"engine={engine}"] if engine else [])]
    try:
        cfg = tiny_world_config(size, config, overrides)
        report = build_world(out, cfg)
    except (ConfigError, RunMismatchError, FileNotFoundError, ImportError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    for name, lines in report["manifests"].items():
        typer.echo(f"{lines:6d}  {out / name}")
    for backend, voices in report["verification"].items():
        for voice, r in voices.items():
            typer.echo(f"ASR round trip {backend} / {voice}: {r['passed']}/{r['checked']} passed")
    typer.echo(f"{report['clips']['written']} clips, {report['clips']['audio_hours']:.3f} h of audio, "
               f"{report['seconds']['total']:.1f} s ({report['clips_per_second']} clips/s)")


@align_app.command("score")
def align_score(
    features_a: Path = typer.Argument(..., help="N x D .npy array, one row per sample."),
    features_b: Path = typer.Argument(..., help="N x D .npy array, rows paired with A's."),
    topk: int = typer.Option(10, "--topk", help="Neighbours per sample (k-NN metrics and cknna)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object {metric: value}."),
) -> None:
    """Score the seven representational-alignment metrics of two paired feature files (SPEC §4)."""
    from rich.console import Console

    from nexus_o.eval.alignment import score_files, scores_json, scores_table

    try:
        scores = score_files(features_a, features_b, topk=topk)
    except (ValueError, FileNotFoundError) as err:  # AlignmentInputError is a ValueError
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    if json_out:
        typer.echo(scores_json(scores))
    else:
        Console().print(scores_table(scores, title=f"{features_a.name} vs {features_b.name}, topk={topk}"))


@align_app.command("run")
def align_run(
    out: Path = typer.Option(..., "--out", help="Output folder: scores.json, table7.md, layers.png, features/."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Our checkpoint folder, or the preset 'tiny'."),
    data: Optional[Path] = typer.Option(None, "--data", help="Image-caption(-speech) manifest, see docs/alignment.md."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="A Qwen2.5-VL checkpoint folder to compare with."),
    topk: int = typer.Option(10, "--topk", help="Neighbours per sample (k-NN metrics and cknna)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use only the first N samples."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Samples per forward pass."),
    device: Optional[str] = typer.Option(None, "--device", help="cuda, cuda:1, cpu, ... (default: GPU if any)."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="float32, bfloat16 or float16 (default: checkpoint's)."),
    per_metric: bool = typer.Option(False, "--per-metric", help="Also plot layers_<metric>.png for each metric."),
    rescore: bool = typer.Option(False, "--rescore", help="Score the features already in OUT/features; load no model."),
) -> None:
    """Vision-language alignment of a model (paper §4.2): Table 7 (unembedding) and Figure 3 (per layer)."""
    from rich.console import Console

    from nexus_o.eval.alignment.results import table7_rich
    from nexus_o.eval.alignment.run import rescore_alignment, run_alignment

    try:
        if rescore:
            result = rescore_alignment(out, topk=topk, device=device, per_metric_plots=per_metric)
        elif model is None or data is None:
            raise ValueError("--model and --data are needed (or --rescore to score saved features again)")
        else:
            result = run_alignment(model, data, out, baseline=baseline, topk=topk, limit=limit, batch_size=batch_size,
                                   device=device, dtype=dtype, per_metric_plots=per_metric)
    except (ValueError, FileNotFoundError) as err:  # ManifestError and AlignmentInputError are ValueErrors
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err
    Console().print(table7_rich(result.scores))
    for path in [result.scores_json, result.table7, *result.plots]:
        typer.echo(f"wrote {path}")


@app.command()
def serve(
    model: str = typer.Option(..., "--model", "-m", help="A checkpoint folder, or the preset name 'tiny'."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="ServeSettings YAML (flags override it)."),
    model_name: Optional[str] = typer.Option(None, help="Model id clients pass (default: the preset/folder name)."),
    allow_local_media: Optional[Path] = typer.Option(None, help="Folder whose files file:// media URLs may name."),
    max_body_mb: Optional[float] = typer.Option(None, help="Request body limit in MB (default 25)."),
    max_audio_seconds: Optional[float] = typer.Option(None, help="Longest audio input (default 120)."),
    max_image_pixels: Optional[int] = typer.Option(None, help="Largest image, width*height (default 20M)."),
    max_media_parts: Optional[int] = typer.Option(None, help="Media parts per request (default 8)."),
    max_queue: Optional[int] = typer.Option(None, help="Requests waiting for the model before 429 (default 16)."),
    max_queue_wait: Optional[float] = typer.Option(None, help="Seconds a request may wait for the model before "
                                                              "503 (default 60)."),
    timeout: Optional[float] = typer.Option(None, help="Seconds per request before 504 (default 120)."),
    max_prompt_tokens: Optional[int] = typer.Option(None, help="Cap on prompt tokens, media included (default: "
                                                               "the model's context)."),
    max_tokens: Optional[int] = typer.Option(None, help="Cap on reply tokens (default 512)."),
    max_speech_seconds: Optional[float] = typer.Option(None, help="Cap on spoken replies (default 30)."),
) -> None:
    """Serve a model with an OpenAI-compatible API (POST /v1/chat/completions) and the web demo (/demo)."""
    from nexus_o.config.loader import ConfigError
    from nexus_o.serve.server import run_server
    from nexus_o.serve.settings import load_settings

    try:
        settings = load_settings(
            config, model_name=model_name or Path(model).name, allow_local_media=allow_local_media,
            max_body_bytes=int(max_body_mb * 1024 * 1024) if max_body_mb else None,
            max_audio_seconds=max_audio_seconds, max_image_pixels=max_image_pixels, max_media_parts=max_media_parts,
            max_queue=max_queue, max_queue_wait=max_queue_wait, request_timeout=timeout,
            max_prompt_tokens=max_prompt_tokens, max_tokens=max_tokens, max_speech_seconds=max_speech_seconds)
        run_server(model, settings, host=host, port=port,
                   banner=f"serving {settings.model_name!r} on http://{host}:{port}/v1 (demo: http://{host}:{port}/demo)")
    except (ConfigError, ValueError, FileNotFoundError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err


@app.command()
def demo(
    model: str = typer.Option(..., "--model", "-m", help="A checkpoint folder, or the preset name 'tiny'."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(7860, help="Port to listen on."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="ServeSettings YAML."),
) -> None:
    """Start the web demo (chat with text, images, microphone or audio files; spoken replies) at /demo."""
    from nexus_o.config.loader import ConfigError
    from nexus_o.serve.server import run_server
    from nexus_o.serve.settings import load_settings

    try:
        settings = load_settings(config, model_name=Path(model).name)
        run_server(model, settings, host=host, port=port, banner=f"open http://{host}:{port}/demo in a browser")
    except (ConfigError, ValueError, FileNotFoundError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err


@app.command()
def chat(
    model: str = typer.Option(..., "--model", "-m", help="A checkpoint folder, or the preset name 'tiny'."),
    text: Optional[str] = typer.Option(None, "--text", "-t", help="The message (one turn)."),
    image: Optional[list[Path]] = typer.Option(None, "--image", help="Image file(s) to send."),
    audio: Optional[list[Path]] = typer.Option(None, "--audio", help="Audio file(s) to send."),
    video: Optional[list[Path]] = typer.Option(None, "--video", help="Video file(s) to send."),
    speak: Optional[Path] = typer.Option(None, "--speak", help="Write the spoken reply to this WAV file."),
) -> None:
    """Chat in the terminal: one turn with --text/--image/--audio/--video, else an interactive session."""
    from nexus_o.serve.terminal import run_chat

    try:
        run_chat(model, text, image or [], audio or [], video or [], speak)
    except (ValueError, FileNotFoundError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from err


if __name__ == "__main__":
    app()
