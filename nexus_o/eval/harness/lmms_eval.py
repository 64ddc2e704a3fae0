"""lmms-eval adapter: a NEXUS-O model behind lmms-eval's `lmms` model interface.

lmms-eval (`python -m lmms_eval --model NAME --model_args k=v,... --tasks mme,...`) hands a model
lists of `Instance` requests whose `.args` are, for ``generate_until``,
``(context, gen_kwargs, doc_to_visual, doc_id, task, split)`` and, for ``loglikelihood``,
``(context, continuation or doc_to_target, doc_to_visual, doc_id, task, split)``; the media of a
request are ``doc_to_visual(self.task_dict[task][split][doc_id])``: PIL images, video or audio
paths, or ``{"array", "sampling_rate"}`` audio dicts.

`NexusOLmmsModel` implements that interface without importing lmms-eval. lmms-eval only accepts
subclasses of its `lmms`, so `NexusOLmms` (this module's attribute, built on first access with
lmms-eval installed) mixes the two, and `register_lmms_eval` registers it by its import path.
`python -m nexus_o.eval.harness.lmms_eval ARGS` is lmms-eval's own CLI with the model `nexus_o`
registered. Multi-round generation (`generate_until_multi_round`) is not supported.
"""

from __future__ import annotations

import json
import mimetypes
import os
from functools import cache
from pathlib import Path

import torch
from tqdm.auto import tqdm

MODULE = "nexus_o.eval.harness.lmms_eval"  # not __name__: that is "__main__" under `python -m`
CLASS_PATH = f"{MODULE}.NexusOLmms"
DEFAULT_NAME = "nexus_o"


class NexusOLmmsModel:
    """lmms-eval model over a NEXUS-O model.

    pretrained: checkpoint folder or preset name (`load_model`); or pass a loaded `model` and
    `processor`. batch_size: requests per generation batch. max_new_tokens: default reply limit
    (a task's gen_kwargs override it). device: where the model runs (default: the current
    accelerator, else CPU). max_batch_size is accepted from lmms-eval's CLI and unused.
    """

    is_simple = True

    def __init__(self, pretrained: str = "tiny", *, model=None, processor=None, batch_size: int | str = 1,
                 max_new_tokens: int | str = 256, device: str | None = None, max_batch_size=None):
        super().__init__()  # lmms.__init__ when mixed with lmms-eval's base class, else object's
        if (model is None) != (processor is None):
            raise ValueError("pass both model and processor, or neither (then `pretrained` is loaded)")
        try:
            self.batch_size, self.max_new_tokens = int(batch_size), int(max_new_tokens)
        except ValueError:
            raise ValueError(f"batch_size and max_new_tokens must be integers, got {batch_size!r} and "
                             f"{max_new_tokens!r}") from None
        self._rank, self._world_size, self.accelerator = 0, 1, None
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # `accelerate launch`: one shard of requests per rank
            from accelerate import Accelerator

            self.accelerator = Accelerator()
            self._rank, self._world_size = self.accelerator.process_index, self.accelerator.num_processes
            device = device or str(self.accelerator.device)
        if model is None:
            from nexus_o.models.loading import load_model

            model, processor = load_model(pretrained)
        self.pretrained = str(pretrained)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model, self.processor = model.to(device).eval(), processor
        self.task_dict: dict = getattr(self, "task_dict", {})

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def world_size(self) -> int:
        return self._world_size

    # -- requests --------------------------------------------------------------------------------
    def _conversation(self, context: str, doc_to_visual, doc_id, task: str, split: str) -> dict:
        visuals = doc_to_visual(self.task_dict[task][split][doc_id]) if doc_to_visual is not None else []
        if visuals is not None and not isinstance(visuals, (list, tuple)):
            visuals = [visuals]
        parts = [visual_part(v) for v in (visuals or []) if v is not None]
        # lmms-eval contexts written for LLaVA carry "<image>" markers; our media parts come first.
        parts.append({"type": "text", "text": context.replace("<image>", "").strip()})
        return {"messages": [{"role": "user", "content": parts}]}

    def generate_until(self, requests) -> list[str]:
        """Greedy (or, with temperature > 0 and do_sample, sampled) replies cut at the `until` strings."""
        from nexus_o.inference.text import generate_text

        replies: list[str] = []
        batch: list = []
        bar = tqdm(total=len(requests), desc="nexus-o responding", disable=self.rank != 0)

        def flush():
            gen_kwargs = batch[0].args[1]
            max_new_tokens, until, options = generation_options(gen_kwargs, self.max_new_tokens)
            conversations = [self._conversation(r.args[0], *r.args[2:]) for r in batch]
            for text in generate_text(self.model, self.processor, conversations, max_new_tokens, **options):
                for stop in until:
                    text = text.split(stop)[0]
                replies.append(text)
            bar.update(len(batch))
            batch.clear()

        for request in requests:
            if batch and (len(batch) == self.batch_size or _key(request.args[1]) != _key(batch[0].args[1])):
                flush()
            batch.append(request)
        if batch:
            flush()
        bar.close()
        return replies

    @torch.inference_mode()
    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        """(sum of log p(continuation tokens | prompt), whether greedy decoding would produce them)."""
        out = []
        for request in tqdm(requests, desc="nexus-o loglikelihood", disable=self.rank != 0):
            context, target, doc_to_visual, doc_id, task, split = request.args
            continuation = target if isinstance(target, str) else target(self.task_dict[task][split][doc_id])
            out.append(self.continuation_logprob(self._conversation(context, doc_to_visual, doc_id, task, split),
                                                 continuation))
        return out

    def continuation_logprob(self, conversation: dict, continuation: str) -> tuple[float, bool]:
        """Score `continuation` as the start of the assistant reply to `conversation`."""
        batch = self.processor.apply_chat_template(conversation, add_generation_prompt=True).to(self.model.device)
        ids = self.processor.tokenizer(continuation, add_special_tokens=False)["input_ids"]
        if not ids:
            return 0.0, True
        cont = torch.tensor([ids], device=self.model.device)
        n_prompt = batch["input_ids"].shape[1]
        batch["input_ids"] = torch.cat([batch["input_ids"], cont], dim=1)
        batch["attention_mask"] = torch.cat([batch["attention_mask"], torch.ones_like(cont)], dim=1)
        batch["mm_token_type_ids"] = torch.cat([batch["mm_token_type_ids"], torch.zeros_like(cont)], dim=1)
        logits = self.model(**batch).logits[0, n_prompt - 1:-1].float()  # [len(ids), vocab]: predicts ids
        logprobs = logits.log_softmax(-1).gather(-1, cont[0, :, None])[:, 0]
        return float(logprobs.sum()), bool((logits.argmax(-1) == cont[0]).all())

    def generate_until_multi_round(self, requests) -> list[str]:
        raise NotImplementedError("nexus-o's lmms-eval adapter does not support multi-round generation tasks "
                                  "(generate_until_multi_round); use single-round tasks")


def visual_part(visual) -> dict:
    """One doc_to_visual item -> a chat content part (PIL image, media path, or audio dict)."""
    if isinstance(visual, dict) and "array" in visual:
        return {"type": "audio", "audio": visual}
    if isinstance(visual, (str, Path)):
        kind = (mimetypes.guess_type(str(visual))[0] or "").split("/")[0]
        if kind not in ("image", "video", "audio"):
            raise ValueError(f"cannot tell the media type of visual {str(visual)[:80]!r} from its suffix")
        return {"type": kind, kind: str(visual)}
    if hasattr(visual, "convert") and hasattr(visual, "size"):  # a PIL image
        return {"type": "image", "image": visual}
    raise ValueError(f"unsupported visual of type {type(visual).__name__}; expected a PIL image, a media path "
                     f"or an {{'array', 'sampling_rate'}} audio dict")


def generation_options(gen_kwargs: dict, default_max_new_tokens: int) -> tuple[int, list[str], dict]:
    """lmms-eval gen_kwargs -> (max_new_tokens, stop strings, `generate` keywords)."""
    until = gen_kwargs.get("until") or []
    until = [until] if isinstance(until, str) else list(until)
    options: dict = {}
    temperature = float(gen_kwargs.get("temperature", 0) or 0)
    if gen_kwargs.get("do_sample") and temperature > 0:
        options.update(do_sample=True, temperature=temperature, top_p=float(gen_kwargs.get("top_p") or 1.0))
    if int(gen_kwargs.get("num_beams", 1) or 1) > 1:
        options["num_beams"] = int(gen_kwargs["num_beams"])
    return int(gen_kwargs.get("max_new_tokens", default_max_new_tokens)), until, options


def _key(gen_kwargs: dict) -> str:
    return json.dumps(gen_kwargs, sort_keys=True, default=str)


@cache
def lmms_class() -> type:
    """`NexusOLmmsModel` mixed with lmms-eval's `lmms` base class (lmms-eval must be installed)."""
    try:
        from lmms_eval.api.model import lmms
    except ImportError as err:
        raise ImportError("lmms-eval is not installed: pip install lmms-eval (or git clone "
                          "https://github.com/EvolvingLMMs-Lab/lmms-eval && pip install -e lmms-eval)") from err
    return type("NexusOLmms", (NexusOLmmsModel, lmms), {"__module__": MODULE, "__qualname__": "NexusOLmms"})


def __getattr__(name: str):
    # PEP 562: `NexusOLmms` exists as an importable class path only once lmms-eval is importable.
    if name == "NexusOLmms":
        return lmms_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register_lmms_eval(name: str = DEFAULT_NAME) -> str:
    """Register `NexusOLmms` with lmms-eval under `name` (both of its registry generations)."""
    cls = lmms_class()
    try:  # lmms-eval with the manifest registry (2025+)
        from lmms_eval.models import MODEL_REGISTRY_V2
        from lmms_eval.models.registry_v2 import ModelManifest

        MODEL_REGISTRY_V2.register_manifest(ModelManifest(model_id=name, simple_class_path=CLASS_PATH), overwrite=True)
    except ImportError:
        from lmms_eval.models import AVAILABLE_MODELS

        AVAILABLE_MODELS[name] = CLASS_PATH
    try:
        from lmms_eval.api.registry import register_model
    except ImportError:
        return name
    register_model(name)(cls)
    return name


def main() -> None:
    """`python -m nexus_o.eval.harness.lmms_eval ARGS`: lmms-eval's CLI, model `nexus_o` registered."""
    register_lmms_eval()
    from lmms_eval.__main__ import cli_evaluate

    cli_evaluate()


if __name__ == "__main__":
    main()
