#!/usr/bin/env python3
"""The project's GPU benchmark (with a CPU smoke mode): ceilings, prefill, decode, training, alignment.

Random weights, built straight on the device in bf16 (no CPU copy). Sections, in this order,
each with its own time cap; <out>/gpu_results.json is rewritten atomically after every section
(and inside the long ones), so a timeout or crash keeps what was measured:

  env        versions, device, and the machine's ceilings: bf16 and fp32 matmul FLOP/s (an n^3
             product), copy bandwidth (bytes read + written per second)
  build      the preset on the device; parameters per component, seconds, bytes
  text       prompt = text + one image + one audio clip (7B: 64 text, 448x448 -> 256 image
             tokens, 10 s -> 100 audio tokens), through plain transformers `model.generate`
             (the baseline): time to first token, greedy decode tokens/s, fraction of the
             bandwidth bound (bytes of LLM weights + KV cache read per token / copy bandwidth)
  train      stage-2 steps (vision adapter, audio adapter, LLM, LM head train; encoders
             frozen), activation checkpointing, fused AdamW, B x L tokens, one image and one
             clip per row; one variant per training change, each measured alone:
               frozen_backward  encoders' blocks run backward (transformers' input-grad hooks)
               baseline         the project's default: frozen encoders run forward only
               chunked_ce       + LM loss without full-vocabulary fp32 logits (models/lm_loss.py)
               liger_ce         the same with liger-kernel's Triton kernel (CUDA, if installed)
               selective_ckpt   + checkpoint every 2nd decoder block only
               amp_fp32_master  fp32 weights + bf16 autocast (what Trainer's bf16=True does)
             s/step, tokens/s, peak memory, MFU (formula below)
  train_packed  samples of mixed lengths (text filling 1/8 to all of L, one image and one clip
             each), padded to the longest (padded_mixed) versus packed (packed_mixed, `pack_to`:
             per-sample M-RoPE positions, block-diagonal attention); tokens/s of real tokens
  align      the seven alignment metrics (`score_layers`) on random features
  text_project  decoding through the project's public path (`generate_from_inputs`, what
             `generate_text` runs): first call (compilation, if any), TTFT, tokens/s, bound
  text_batch the same path with B copies of the prompt decoded together (`ReplyDecoder.batch_steps`
             on CUDA, what the server does with text requests that arrive together): tokens/s
             over all rows and per row, for each B of --decode-batches
  compile    transformers `generate` with a static cache (compiled decode step on CUDA), and the
             project's `ReplyDecoder` with its step compiled (inductor, fullgraph) inside its CUDA graph
  train_compiled  the chunked_ce step with every LLM decoder layer torch.compile'd (regional
             compilation; its first steps pay the compile, excluded as warm-up), 0 graph breaks
             (`compile_layers: true` in training; tests/models/test_compiled_layer.py)
The last three may compile (torch.compile, CUDA graphs), so they run last.

MFU = model FLOPs per step / step time / peak, with model FLOPs =
  6 x N x tokens for each trainable part and 2 x N x tokens for each frozen part run forward
  only (N its parameters without the token embedding table; tokens the positions it runs on:
  LLM and LM head every position, ViT every patch, merger every merged image token, Whisper
  1500 positions per 30-s window, audio adapter every audio token). Attention's own FLOPs are
  left out (about 4% at 2k tokens). Peaks: the H200's datasheet 989 TFLOP/s (dense bf16) and the
  faster matmul rate (bf16 or fp32) measured in `env`. `mfu_llm_6nt` also gives the issue's simpler figure:
  6 x (trainable LLM + head parameters) x tokens.

GPU (one call, ~3-5 minutes on an H200; the watchdog ends it at --deadline, 320 s by default):
    PYTHONUNBUFFERED=1 python benchmarks/gpu.py --device cuda --preset nexus-o-7b --out results
CPU smoke run (tiny preset, small sizes; under two minutes on 2 cores):
    python benchmarks/gpu.py --device cpu --preset tiny --small --json
With --json the last line printed is one JSON object of headline figures (ttft_ms,
decode_tokens_per_s, decode_fraction_of_bound, train_tokens_per_s, train_mfu, ...).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import signal
import statistics
import sys
import threading
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import torch
from gpu_train import COMPILED_VARIANT, VARIANTS, TrainBench  # benchmarks/ (the script's folder)
from synthetic_inputs import StubProcessor, default_dtype, synthetic_inputs

SECTIONS = ("env", "build", "text", "train", "train_packed", "align", "text_project", "text_batch", "compile",
            "train_compiled")
CAPS = {"env": 45, "build": 90, "text": 90, "train": 200, "train_packed": 90, "align": 45, "text_project": 150,
        "text_batch": 120, "compile": 150, "train_compiled": 150}
SMALL = dict(matmul_n=512, copy_mib=64, text_tokens=32, image_size=112, audio_seconds=2.0, new_tokens=48,
             decode_batches="2",
             train_batch=2, train_seq=256, train_warmup=1, train_steps=2, align_n=256, align_d=32,
             align_layers=2, deadline=110.0, threads=1)


class SectionTimeout(BaseException):
    """Raised by SIGALRM at a section's cap (a BaseException: library `except Exception` cannot eat it)."""


@contextlib.contextmanager
def time_cap(seconds: float):
    """Raise SectionTimeout in the main thread after `seconds`."""
    def on_alarm(signum, frame):
        raise SectionTimeout()
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1.0))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def rounded(x, digits: int = 5):
    if isinstance(x, float):
        return float(f"{x:.{digits}g}")
    if isinstance(x, dict):
        return {k: rounded(v, digits) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [rounded(v, digits) for v in x]
    return x


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.device = torch.device(args.device)
        self.cuda = self.device.type == "cuda"
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.path = self.out / "gpu_results.json"
        self.lock = threading.Lock()
        self.t0 = time.perf_counter()
        self.model = self.config = None
        self.peaks: dict[str, float] = {}
        self.results = {"meta": {"argv": sys.argv, "started_utc": datetime.now(timezone.utc).isoformat(),
                                 "host": platform.node(), "args": vars(args)}, "sections": {}}

    # -- bookkeeping -------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t0:6.1f}s] {msg}", flush=True)

    def save(self) -> None:
        with self.lock:
            self.results["meta"]["elapsed_s"] = round(time.perf_counter() - self.t0, 2)
            self.results["summary"] = self.summary()
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(rounded(self.results), indent=1, default=str))
            os.replace(tmp, self.path)

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def timed(self, fn, reps: int = 1, warmup: int = 0) -> float:
        """Mean seconds per call of fn (device synchronised)."""
        for _ in range(warmup):
            fn()
        self.sync()
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        self.sync()
        return (time.perf_counter() - start) / reps

    def decode_rate(self, run, n: int) -> tuple[float, float]:
        """(seconds to the first token, decode tokens/s) from run(1) and run(n), each the fastest
        of 3 calls (the fastest is the one least disturbed by other work on the machine):
        tokens/s = (n - 1) / (t_n - t_1)."""
        first = min(self.timed(lambda: run(1)) for _ in range(3))
        total = min(self.timed(lambda: run(n)) for _ in range(3))
        if total <= first:
            raise RuntimeError(f"{n} tokens took {total:.4f} s, no longer than 1 token ({first:.4f} s): "
                               f"use more --new-tokens")
        return first, (n - 1) / (total - first)

    def free(self) -> None:
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()

    def peak_gib(self) -> float | None:
        return torch.cuda.max_memory_allocated() / 2**30 if self.cuda else None

    def run(self, name: str, fn, cap: float) -> None:
        if name not in self.args.sections:
            return
        rec: dict = {"status": "running"}
        self.results["sections"][name] = rec
        left = self.args.deadline - (time.perf_counter() - self.t0) - 5
        cap = min(cap * self.args.cap_scale, left)
        if cap < 3:
            rec.update(status="skipped", reason="no time left before the deadline")
            self.save()
            return
        if name not in ("env", "build", "align") and self.model is None:
            rec.update(status="skipped", reason="no model (build failed)")
            self.save()
            return
        self.log(f"{name}: start (cap {cap:.0f} s)")
        self.save()
        start = time.perf_counter()
        try:
            with time_cap(cap):
                fn(rec)
            rec["status"] = "ok"
        except SectionTimeout:
            rec.update(status="timeout", error=f"passed its {cap:.0f} s cap")
        except Exception as err:  # noqa: BLE001 - every failure is recorded, the run goes on
            rec.update(status="error", error=f"{type(err).__name__}: {err}"[:2000],
                       traceback=traceback.format_exc()[-4000:])
        rec["seconds"] = time.perf_counter() - start
        self.free()
        self.save()
        self.log(f"{name}: {rec['status']} in {rec['seconds']:.1f} s {rec.get('error', '')[:300]}")

    def start_watchdog(self) -> None:
        """Write what was measured and end the process at --deadline, whatever hangs."""
        def fire():
            self.results["meta"]["deadline_hit"] = True
            with contextlib.suppress(Exception):
                self.save()
            if self.args.json:
                print(json.dumps(rounded(self.summary())), flush=True)
            os._exit(3)
        timer = threading.Timer(self.args.deadline, fire)
        timer.daemon = True
        timer.start()

    # -- inputs ------------------------------------------------------------------------------
    def inputs(self, batch: int = 1, total_len: int | None = None, labels: bool = False) -> tuple[dict, dict]:
        """The benchmark prompt (`synthetic_inputs`), `batch` rows on the device, and its token counts."""
        args = self.args
        return synthetic_inputs(self.config, text_tokens=args.text_tokens, image_size=args.image_size,
                                audio_seconds=args.audio_seconds, batch=batch, total_len=total_len, labels=labels,
                                device=self.device)

    # -- figures -----------------------------------------------------------------------------
    def decode_bound(self, context: int) -> dict:
        """Bytes read per decoded token (LLM without the embedding table, final norm, LM head, KV
        cache at `context`) and the tokens/s that allows at the measured copy bandwidth."""
        vl = self.model.vl
        lm = vl.model.language_model
        elem = next(lm.parameters()).element_size()
        weights = (sum(p.numel() for p in lm.parameters()) - lm.embed_tokens.weight.numel()
                   + vl.lm_head.weight.numel()) * elem
        text = self.config.vl_config.text_config
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        kv = 2 * text.num_hidden_layers * text.num_key_value_heads * head_dim * context * elem
        out = {"weight_bytes_per_token": weights, "kv_bytes_per_token": kv}
        if "copy_bytes_per_s" in self.peaks:
            out["bound_tokens_per_s"] = self.peaks["copy_bytes_per_s"] / (weights + kv)
        return out

    def measure_decode(self, rec: dict, run, n: int, context: int) -> dict:
        """Time to first token, decode tokens/s (`decode_rate` of run) and its fraction of the
        bandwidth bound at `context` tokens, into `rec`; returns the bound (`decode_bound`)."""
        ttft, rate = self.decode_rate(run, n)
        bound = self.decode_bound(context)
        rec.update(ttft_ms=1e3 * ttft, decode_tokens_per_s=rate)
        if "bound_tokens_per_s" in bound:
            rec["decode_fraction_of_bound"] = rate / bound["bound_tokens_per_s"]
        return bound

    def project_decode(self, inputs: dict):
        """run(tokens): greedy replies of `tokens` tokens to `inputs` through the project's public
        path (`generate_from_inputs`, what `generate_text` runs)."""
        from transformers import BatchFeature

        from nexus_o.inference.text import generate_from_inputs

        text = self.config.vl_config.text_config
        processor = StubProcessor(text.eos_token_id, text.pad_token_id or text.eos_token_id)
        feature = BatchFeature(inputs)
        return lambda tokens: generate_from_inputs(self.model, processor, feature, tokens, min_new_tokens=tokens)

    def generate(self, inputs: dict, new_tokens: int, **kwargs):
        text = self.config.vl_config.text_config
        eos = text.eos_token_id
        return self.model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                                   eos_token_id=eos, pad_token_id=text.pad_token_id or eos, **kwargs)

    # -- sections ----------------------------------------------------------------------------
    def sec_env(self, rec: dict) -> None:
        import transformers

        rec.update(python=platform.python_version(), torch=torch.__version__, cuda=torch.version.cuda,
                   transformers=transformers.__version__, cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads())
        for name in ("liger_kernel", "flash_attn", "deepspeed", "accelerate"):
            with contextlib.suppress(Exception):
                module = __import__(name)
                rec[name] = getattr(module, "__version__", "installed")
        if self.cuda:
            props = torch.cuda.get_device_properties(self.device)
            rec.update(gpu=props.name, gpu_memory_gib=props.total_memory / 2**30, capability=f"{props.major}.{props.minor}")
        else:
            rec["cpu"] = platform.processor() or platform.machine()
        n = self.args.matmul_n
        a = torch.randn(n, n, device=self.device, dtype=torch.bfloat16)
        b = torch.randn(n, n, device=self.device, dtype=torch.bfloat16)
        bf16 = 2 * n ** 3 / self.timed(lambda: torch.matmul(a, b), reps=10, warmup=3)
        a, b = a.float(), b.float()
        fp32 = 2 * n ** 3 / self.timed(lambda: torch.matmul(a, b), reps=10, warmup=3)
        # The MFU reference: the faster of the two (CPUs without bf16 units run fp32 faster).
        self.peaks["matmul_flops"] = max(bf16, fp32)
        rec["matmul"] = {"n": n, "bf16_tflops": bf16 / 1e12, "fp32_tflops": fp32 / 1e12}
        nbytes = self.args.copy_mib * 2**20
        x = torch.ones(nbytes // 2, device=self.device, dtype=torch.bfloat16)
        y = torch.empty_like(x)
        seconds = self.timed(lambda: y.copy_(x), reps=10, warmup=3)
        self.peaks["copy_bytes_per_s"] = 2 * nbytes / seconds
        rec["copy"] = {"buffer_mib": self.args.copy_mib, "gb_per_s_read_plus_write": self.peaks["copy_bytes_per_s"] / 1e9}

    def sec_build(self, rec: dict) -> None:
        from nexus_o.bundle.presets import preset_config
        from nexus_o.models.modeling import NexusOForConditionalGeneration
        from nexus_o.train.components import component_parameters
        from nexus_o.train.config import COMPONENTS

        self.config = preset_config(self.args.preset, speech_decoder_config=None)
        torch.manual_seed(0)
        start = time.perf_counter()
        with default_dtype(torch.bfloat16), self.device:  # every tensor created on the device: no CPU copy
            model = NexusOForConditionalGeneration(self.config)
        model.eval().requires_grad_(False)
        self.sync()
        rec["build_seconds"] = time.perf_counter() - start
        rec["params"] = {name: sum(p.numel() for _, p in component_parameters(model, name)) for name in COMPONENTS}
        rec["params_total"] = sum(p.numel() for p in model.parameters())
        rec["weight_gib"] = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**30
        rec["attn_implementation"] = model.vl.config._attn_implementation
        self.model = model

    def sec_text(self, rec: dict) -> None:
        inputs, info = self.inputs()
        rec["prompt"] = info
        n = self.args.new_tokens
        rec.update(path="transformers model.generate (eager, dynamic cache)", new_tokens=n)
        with torch.inference_mode():
            self.generate(inputs, 4)  # warm-up
            rec["bandwidth_bound"] = self.measure_decode(rec, lambda tokens: self.generate(inputs, tokens), n,
                                                         info["length"] + n // 2)

    def sec_text_project(self, rec: dict) -> None:
        inputs, info = self.inputs()
        rec["prompt"] = info
        n = self.args.new_tokens
        run = self.project_decode(inputs)
        rec.update(path="nexus_o.inference.text.generate_from_inputs (what generate_text runs)", new_tokens=n)
        rec["first_call_s"] = self.timed(lambda: run(n))  # pays any compilation / warm-up
        self.save()
        rec["bandwidth_bound"] = self.measure_decode(rec, run, n, info["length"] + n // 2)

    def sec_text_batch(self, rec: dict) -> None:
        n = self.args.new_tokens
        rec["path"] = "nexus_o.inference.text.generate_from_inputs on a batch (ReplyDecoder.batch_steps on CUDA)"
        rec["batches"] = {}
        for rows in [int(b) for b in self.args.decode_batches.split(",") if b]:
            run = self.project_decode(self.inputs(batch=rows)[0])
            run(2)  # capture this batch size's graph
            ttft, rate = self.decode_rate(run, n)
            rec["batches"][str(rows)] = {"ttft_ms": 1e3 * ttft, "tokens_per_s": rows * rate,
                                         "tokens_per_s_per_row": rate}
            self.save()
            self.free()

    def sec_compile(self, rec: dict) -> None:
        inputs, info = self.inputs()
        n = self.args.new_tokens
        context = info["length"] + n // 2
        kwargs = {"cache_implementation": "static"}
        rec["path"] = "transformers generate, static cache (compiled decode step on CUDA)"
        with torch.inference_mode():
            rec["first_call_s"] = self.timed(lambda: self.generate(inputs, n, **kwargs))
            self.save()
            self.measure_decode(rec, lambda tokens: self.generate(inputs, tokens, **kwargs), n, context)
        project: dict = {"path": "ReplyDecoder(compile_step=True): the step compiled (inductor, fullgraph) and "
                                 "replayed as a CUDA graph"}
        rec["project_compiled"] = project
        if not self.cuda:  # inductor compiles the step for minutes on a CPU: not worth a smoke run
            project["status"] = "skipped on CPU"
            return
        from transformers import BatchFeature

        from nexus_o.inference.reply_steps import ReplyDecoder

        decoder = ReplyDecoder(self.model, self.config.vl_config.text_config.eos_token_id, compile_step=True)
        feature = BatchFeature(inputs)  # the decoder moves its inputs with .to(device)

        def run(tokens: int):
            return list(decoder.steps(feature, tokens, min_new_tokens=tokens, conditions=False))

        project["first_call_s"] = self.timed(lambda: run(n))
        self.save()
        self.measure_decode(project, run, n, context)
        project["status"] = "ok"

    def sec_align(self, rec: dict) -> None:
        from nexus_o.eval.alignment import score_layers

        a = self.args
        gen = torch.Generator(device=self.device).manual_seed(0)
        b = torch.randn(a.align_n, a.align_d, generator=gen, device=self.device)
        stack = torch.randn(a.align_layers, a.align_n, a.align_d, generator=gen, device=self.device)
        score_layers(stack[:1, :64], b[:64])  # warm-up
        rec.update(n=a.align_n, d=a.align_d, layers=a.align_layers,
                   one_layer_s=self.timed(lambda: score_layers(stack[:1], b)),
                   all_layers_s=self.timed(lambda: score_layers(stack, b)))

    def sec_train(self, rec: dict) -> None:
        TrainBench(self).section(rec, self.args.variants)

    def sec_train_packed(self, rec: dict) -> None:
        TrainBench(self).packed_section(rec)

    def sec_train_compiled(self, rec: dict) -> None:
        TrainBench(self).section(rec, [COMPILED_VARIANT])

    # -- headline ----------------------------------------------------------------------------
    def summary(self) -> dict:
        """The headline figures: the project's decode path where it ran, else transformers'."""
        s = self.results["sections"]
        text, project, compiled = s.get("text", {}), s.get("text_project", {}), s.get("compile", {})
        chosen = project if project.get("status") == "ok" else text
        out = {"preset": self.args.preset, "device": self.args.device,
               "ttft_ms": chosen.get("ttft_ms"), "decode_tokens_per_s": chosen.get("decode_tokens_per_s"),
               "decode_fraction_of_bound": chosen.get("decode_fraction_of_bound"),
               "decode_path": chosen.get("path"),
               "hf_generate_ttft_ms": text.get("ttft_ms"),
               "hf_generate_decode_tokens_per_s": text.get("decode_tokens_per_s"),
               "hf_generate_decode_fraction_of_bound": text.get("decode_fraction_of_bound"),
               "project_decode_first_call_s": project.get("first_call_s"),
               "hf_static_compiled_decode_tokens_per_s": compiled.get("decode_tokens_per_s"),
               "project_compiled_decode_tokens_per_s": compiled.get("project_compiled", {}).get("decode_tokens_per_s"),
               "batched_decode_tokens_per_s": {b: r["tokens_per_s"] for b, r in
                                               s.get("text_batch", {}).get("batches", {}).items()}}
        variants = {**s.get("train", {}).get("variants", {}), **s.get("train_packed", {}).get("variants", {}),
                    **s.get("train_compiled", {}).get("variants", {})}
        ok = {k: v for k, v in variants.items() if v.get("status") == "ok"}
        best = "baseline" if "baseline" in ok else next(iter(ok), None)
        for name in [*self.args.variants, COMPILED_VARIANT]:
            if name in ok and name in ("chunked_ce", "liger_ce", "selective_ckpt", COMPILED_VARIANT) and \
                    ok[name]["seconds_per_step"] < ok.get(best, {}).get("seconds_per_step", float("inf")):
                best = name
        if best:
            v = ok[best]
            out.update(train_variant=best, train_seconds_per_step=v["seconds_per_step"],
                       train_tokens_per_s=v["tokens_per_s"], train_peak_memory_gib=v.get("peak_memory_gib"),
                       train_mfu=v.get("mfu_vs_989", v["mfu_vs_measured_matmul"]),
                       train_mfu_reference="H200 datasheet 989 TFLOP/s" if "mfu_vs_989" in v
                       else "measured matmul peak of this machine (faster of bf16, fp32)")
        out["train_variants"] = {k: {"s_per_step": v.get("seconds_per_step"), "tokens_per_s": v.get("tokens_per_s"),
                                     "mfu": v.get("mfu_vs_989", v.get("mfu_vs_measured_matmul")),
                                     "peak_gib": v.get("peak_memory_gib"), "status": v.get("status")}
                                 for k, v in variants.items()}
        return out


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--preset", default="nexus-o-7b", choices=["tiny", "nexus-o-7b"])
    p.add_argument("--out", default="bench_out")
    p.add_argument("--small", action="store_true", help="small sizes (CPU smoke run); explicit flags still win")
    p.add_argument("--json", action="store_true", help="print the headline figures as one JSON line, last")
    p.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset of " + ",".join(SECTIONS))
    p.add_argument("--variants", default=",".join(VARIANTS), help="training variants: " + ",".join(VARIANTS))
    p.add_argument("--deadline", type=float, default=320.0, help="seconds; the watchdog ends the run then")
    p.add_argument("--cap-scale", type=float, default=1.0, help="multiplies every section's cap")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--matmul-n", type=int, default=8192)
    p.add_argument("--copy-mib", type=int, default=4096)
    p.add_argument("--text-tokens", type=int, default=64)
    p.add_argument("--image-size", type=int, default=448)
    p.add_argument("--audio-seconds", type=float, default=10.0)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--decode-batches", default="4,8", help="batch sizes of the text_batch section")
    p.add_argument("--train-batch", type=int, default=4)
    p.add_argument("--train-seq", type=int, default=2048)
    p.add_argument("--train-warmup", type=int, default=1)
    p.add_argument("--train-steps", type=int, default=3)
    p.add_argument("--align-n", type=int, default=4096)
    p.add_argument("--align-d", type=int, default=1024)
    p.add_argument("--align-layers", type=int, default=8)
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--small" in argv:
        p.set_defaults(**SMALL)
    args = p.parse_args(argv)
    args.sections = [x for x in args.sections.split(",") if x]
    args.variants = [x for x in args.variants.split(",") if x]
    for given, known, what in ((args.sections, SECTIONS, "sections"), (args.variants, VARIANTS, "variants")):
        if set(given) - set(known):
            p.error(f"unknown {what} {sorted(set(given) - set(known))}; choose from {known}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cpu":
        torch.set_flush_denormal(True)  # random weights make denormals, slow on CPU
    bench = Bench(args)
    bench.start_watchdog()
    bench.log(f"nexus-o GPU benchmark: {args.preset} on {args.device} -> {bench.path}")
    for name in SECTIONS:
        bench.run(name, getattr(bench, f"sec_{name}"), CAPS[name])
    bench.save()
    summary = rounded(bench.summary())
    for key, value in summary.items():
        if key != "train_variants":
            bench.log(f"{key:<40} {value}")
    for key, value in summary.get("train_variants", {}).items():
        bench.log(f"train {key:<34} {value}")
    if args.json:
        print(json.dumps(summary), flush=True)
    bad = [n for n, r in bench.results["sections"].items() if r.get("status") != "ok"]
    return 1 if bad else 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # skip teardown (compile workers, CUDA context): the results are written
