"""Training steps of `benchmarks/gpu.py`: the stage-2 variants, one per training change, the
packed-versus-padded comparison, and the model-FLOPs count behind MFU (the formula is in gpu.py's
docstring). `TrainBench` works on the `Bench` it is given (model, inputs, ceilings, results).
"""

from __future__ import annotations

import statistics
import time
import traceback

import torch
from synthetic_inputs import synthetic_inputs  # benchmarks/ (the script's folder)

from nexus_o.train.compiled_layers import compile_decoder_layers

H200_BF16_DENSE = 989e12  # FLOP/s, vendor datasheet (SXM, dense): the MFU reference on CUDA
VARIANTS = ("frozen_backward", "baseline", "chunked_ce", "liger_ce", "selective_ckpt", "amp_fp32_master")
COMPILED_VARIANT = "compiled_layers"  # chunked_ce with every LLM decoder layer torch.compile'd
# Packed section: samples of mixed lengths, padded to the longest (the default collator) or packed
# (`pack_to`); both run the chunked_ce step.
PACKED_VARIANTS = ("padded_mixed", "packed_mixed")


class TrainBench:
    """Training sections on `bench` (a gpu.py `Bench`)."""

    def __init__(self, bench):
        self.bench = bench

    def model_flops(self, info: dict, trainable: list[str]) -> tuple[float, float]:
        """(model FLOPs of one step, the issue's 6 x trainable LLM params x tokens); see the docstring."""
        from nexus_o.train.components import component_parameters

        model = self.bench.model
        n = {name: sum(p.numel() for _, p in component_parameters(model, name))
             for name in ("vision_encoder", "vision_adapter", "audio_encoder", "audio_adapter", "llm", "lm_head")}
        embed = model.get_input_embeddings().weight
        n["llm"] -= embed.numel()
        head = model.vl.lm_head.weight
        n["lm_head"] = head.numel()  # a tied head still multiplies
        rows = info["batch"]
        tokens = {"llm": rows * info["length"], "lm_head": rows * info["length"],
                  "vision_encoder": rows * info["image_patches"], "vision_adapter": rows * info["image_tokens"],
                  "audio_encoder": rows * info["audio_windows"] * self.bench.config.audio_config.max_source_positions,
                  "audio_adapter": rows * info["audio_tokens"]}
        flops = sum((6 if name in trainable else 2) * n[name] * tokens[name] for name in n)
        llm_trainable = sum(p.numel() for name in ("llm", "lm_head") for _, p in component_parameters(model, name)
                            if p.requires_grad)
        return flops, 6 * llm_trainable * tokens["llm"]

    def section(self, rec: dict, variants: list[str]) -> None:
        """Stage-2 steps on B x L tokens, one image and one clip a row, one run per variant."""
        bench = self.bench
        batch, info = bench.inputs(bench.args.train_batch, bench.args.train_seq, labels=True)
        self._run(rec, {name: (batch, info) for name in variants})

    def packed_section(self, rec: dict) -> None:
        """Samples of mixed lengths (one image and one clip each, text filling to 1/8, 1/4, 1/2 and
        all of L), as many as B x L holds, padded to the longest versus packed into rows of L
        (one row without padding under flash attention). Tokens/s and MFU count real tokens only."""
        from nexus_o.train.packing import SamplePacker

        bench = self.bench
        args, cfg = bench.args, bench.config
        shortest = bench.inputs(1, labels=True)[1]["length"]
        lengths = [max(shortest, args.train_seq * k // 8) for k in (1, 2, 4, 8)]
        samples, infos, budget = [], [], args.train_batch * args.train_seq
        while budget >= shortest:
            length = lengths[len(samples) % len(lengths)]
            if length > budget:
                length = max(shortest, budget)
            sample, info = synthetic_inputs(cfg, text_tokens=args.text_tokens, image_size=args.image_size,
                                            audio_seconds=args.audio_seconds, total_len=length, labels=True)
            samples.append(sample)
            infos.append(info)
            budget -= length
        real = sum(i["length"] for i in infos)
        mixed = dict(infos[0], batch=len(samples), length=real / len(samples), real_tokens=real)
        pad = cfg.vl_config.text_config.pad_token_id or cfg.vl_config.text_config.eos_token_id
        packed = SamplePacker.for_model(bench.model, pad, args.train_seq)(samples)
        padded = _pad_samples(samples, pad)
        rec.update(samples=len(samples), sample_lengths=[i["length"] for i in infos],
                   padded_shape=list(padded["input_ids"].shape), packed_shape=list(packed["input_ids"].shape))
        device = bench.device
        self._run(rec, {"padded_mixed": ({k: v.to(device) for k, v in padded.items()}, mixed),
                        "packed_mixed": ({k: v.to(device) for k, v in packed.items()}, mixed)})

    def _run(self, rec: dict, runs: dict[str, tuple[dict, dict]]) -> None:
        """Each variant on its (batch, info); tokens/s and MFU from the info's token counts."""
        from nexus_o.train.components import apply_freeze
        from nexus_o.train.config import STAGE_TRAINABLE

        bench = self.bench
        trainable = STAGE_TRAINABLE["stage2_sft"]
        apply_freeze(bench.model, trainable)
        rec.update(trainable=trainable, variants={})
        try:
            for name, (batch, info) in runs.items():
                var: dict = {}
                rec["variants"][name] = var
                rec.setdefault("inputs", info)
                flops, flops_llm = self.model_flops(info, trainable)
                rec.setdefault("model_flops_per_step", flops)
                rec.setdefault("llm_6nt_flops_per_step", flops_llm)
                bench.log(f"train: variant {name}")
                try:
                    self.variant(name, var, batch, trainable)
                except torch.OutOfMemoryError as err:
                    var.update(status="out of memory", error=str(err)[:300])
                except Exception as err:  # noqa: BLE001
                    var.update(status="error", error=f"{type(err).__name__}: {err}"[:1000],
                               traceback=traceback.format_exc()[-3000:])
                finally:
                    self.reset_model()
                if "seconds_per_step" in var:
                    step = var["seconds_per_step"]
                    tokens = info["batch"] * info["length"]
                    var.update(tokens_per_s=tokens / step, model_tflops_per_s=flops / step / 1e12,
                               mfu_vs_measured_matmul=flops / step / bench.peaks["matmul_flops"],
                               mfu_llm_6nt_vs_measured=flops_llm / step / bench.peaks["matmul_flops"])
                    if bench.cuda:
                        var.update(mfu_vs_989=flops / step / H200_BF16_DENSE,
                                   mfu_llm_6nt_vs_989=flops_llm / step / H200_BF16_DENSE)
                    var["status"] = "ok"
                    bench.log(f"train: {name}: {step:.3f} s/step, {tokens / step:.0f} tok/s, "
                              f"MFU {100 * var.get('mfu_vs_989', var['mfu_vs_measured_matmul']):.1f}%")
                bench.save()
        finally:
            self.reset_model()

    def reset_model(self) -> None:
        model = self.bench.model
        model.zero_grad(set_to_none=True)
        getattr(model, "activation_checkpointing_disable", model.gradient_checkpointing_disable)()
        model.disable_input_require_grads()
        for layer in model.vl.model.language_model.layers:
            layer._compiled_call_impl = None  # undo Module.compile
        if next(model.parameters()).dtype != torch.bfloat16:
            model.to(torch.bfloat16)
        model.eval().requires_grad_(False)
        self.bench.free()

    def variant(self, name: str, var: dict, batch: dict, trainable: list[str]) -> None:
        from transformers import PreTrainedModel

        from nexus_o.train.components import apply_freeze, param_groups

        model, args = self.bench.model, self.bench.args
        apply_freeze(model, trainable)
        amp = name == "amp_fp32_master"
        if amp:
            model.float()  # fp32 master weights, grads and AdamW states; bf16 compute under autocast
        every = 2 if name == "selective_ckpt" else 1
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.25
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False},
                                                  every_n_layers=every)
        elif every == 1:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        else:
            raise RuntimeError("checkpointing every n-th layer needs transformers >= 5.25")
        if name == "frozen_backward":  # before the fix: transformers' hooks on every sub-model's embeddings
            model.disable_input_require_grads()
            PreTrainedModel.enable_input_require_grads(model)
        model.train()
        chunked = name in ("chunked_ce", "liger_ce", "selective_ckpt", "amp_fp32_master", COMPILED_VARIANT,
                           *PACKED_VARIANTS)
        impl = "chunked"
        if name == "liger_ce":
            try:
                import liger_kernel  # noqa: F401 - optional: carried as a wheel where wanted
                impl = "liger" if self.bench.cuda else "chunked"
            except ImportError:
                pass
            var["liger"] = impl == "liger" or "unavailable (no liger-kernel, or not CUDA): ran the chunked loss"
        if name == COMPILED_VARIANT:  # regional compilation, as `compile_layers: true` (the first step pays it)
            compile_decoder_layers(model)
        groups = param_groups(model, 1e-7, {}, 0.0)
        try:
            optimizer = torch.optim.AdamW(groups, lr=1e-7, fused=True)
            var["optimizer"] = "AdamW(fused=True)"
        except (RuntimeError, ValueError):
            optimizer = torch.optim.AdamW(groups, lr=1e-7, foreach=True)
            var["optimizer"] = "AdamW(foreach=True)"
        var.update(lm_loss=impl if chunked else "hf", checkpoint_every_n_layers=every,
                   precision="fp32 weights + bf16 autocast" if amp else "bf16 weights, grads, AdamW states")
        batch = dict(batch)
        labels = batch.pop("labels")
        autocast = torch.autocast(self.bench.device.type, dtype=torch.bfloat16, enabled=amp)
        if self.bench.cuda:
            torch.cuda.reset_peak_memory_stats()
        times, losses = [], []
        for _ in range(args.train_warmup + args.train_steps):
            self.bench.sync()
            start = time.perf_counter()
            # the chunked loss as training computes it, in the LM head's forward: no hidden states
            # asked for (that would install transformers' output-capture hooks on every layer,
            # whose ContextVar read breaks a compiled layer's graph)
            with autocast:
                out = model(**batch, labels=labels, use_cache=False, lm_loss=impl if chunked else "hf")
                loss = out.loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            self.bench.sync()
            times.append(time.perf_counter() - start)
            losses.append(float(loss.detach()))
            del out, loss
        var.update(step_seconds=times, losses=losses, seconds_per_step=statistics.mean(times[args.train_warmup:]),
                   peak_memory_gib=self.bench.peak_gib())
        if name == COMPILED_VARIANT:
            from torch._dynamo.utils import counters

            var["dynamo"] = {k: dict(v) for k, v in counters.items() if k in ("stats", "graph_break")}
        del optimizer



def _pad_samples(samples: list[dict], pad_id: int) -> dict:
    """One-row samples (input_ids [1, n_i], labels, ...) as one right-padded batch [B, max n]."""
    from nexus_o.processing.batching import join_rows

    batch = dict(join_rows([{k: v for k, v in s.items() if k != "labels"} for s in samples], pad_id, side="right"))
    width = batch["input_ids"].shape[1]
    batch["labels"] = torch.cat([torch.nn.functional.pad(s["labels"], (0, width - s["labels"].shape[1]), value=-100)
                                 for s in samples])
    return batch
