"""lmms-eval adapter: a NEXUS-O model behind lmms-eval's model interfaces (lmms-eval 0.7).

lmms-eval (`lmms-eval --model nexus_o --model_args pretrained=DIR --tasks mme,...`) drives a model
in one of two modes, and the model id `nexus_o` offers both:

- **chat** (the default for a model that has one; `NexusOLmmsChat`): a request's `.args` are
  ``(context, doc_to_messages, gen_kwargs, doc_id, task, split)``; ``doc_to_messages(doc)`` gives
  the whole conversation, system turns and interleaved media included, as lmms-eval's
  `ChatMessages` (`{"role", "content": [{"type": "text", "text"} | {"type": "image" | "audio" |
  "video", "url"}]}`). That is how omni models see a benchmark as it was written.
- **simple** (``--force_simple``; `NexusOLmms`): ``generate_until`` requests are ``(context,
  gen_kwargs, doc_to_visual, doc_id, task, split)`` and ``loglikelihood`` requests ``(context,
  continuation or doc_to_target, doc_to_visual, doc_id, task, split)``; media are
  ``doc_to_visual(doc)``: PIL images, media paths, or ``{"array", "sampling_rate"}`` audio.
  Log-likelihood (multiple-choice by scoring) tasks need this mode.

Both run multi-round tasks (``generate_until_multi_round``): the task's ``doc_to_text`` (simple)
or ``doc_to_messages`` (chat), called with ``round_idx`` and the replies so far, words each round
and says when to stop, as lmms-eval's own models drive it; the result of a request is its list of
replies, one a round.

Registration is lmms-eval's own: the ``lmms_eval.models`` entry point of this package
(`lmms_manifest`, pyproject.toml) when nexus-o is installed, or `register_lmms_eval()` into
lmms-eval's manifest registry from Python. `python -m nexus_o.eval.harness.lmms_eval ARGS` is
lmms-eval's own CLI with the model registered. lmms-eval only accepts subclasses of its `lmms`
class; this module builds them on first access (`NexusOLmms`, `NexusOLmmsChat`), so it imports
without lmms-eval.
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
CHAT_CLASS_PATH = f"{MODULE}.NexusOLmmsChat"
DEFAULT_NAME = "nexus_o"
MAX_ROUNDS = 64  # a multi-round task that never says "stop" is a task bug, not a long conversation


class NexusOLmmsModel:
    """lmms-eval model over a NEXUS-O model (simple mode; `NexusOLmmsChatModel` is the chat mode).

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
            from nexus_o.bundle.loading import load_model

            omni = load_model(pretrained)
            model, processor = omni.model, omni.processor
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
    def _doc(self, task: str, split: str, doc_id):
        return self.task_dict[task][split][doc_id]

    def _conversation(self, context: str, visuals) -> dict:
        """A one-turn conversation: the media parts, then the context (minus LLaVA's "<image>" marks)."""
        if visuals is not None and not isinstance(visuals, (list, tuple)):
            visuals = [visuals]
        parts = [visual_part(v) for v in (visuals or []) if v is not None]
        parts.append({"type": "text", "text": context.replace("<image>", "").strip()})
        return {"messages": [{"role": "user", "content": parts}]}

    def _request_conversation(self, args: tuple) -> dict:
        context, _, doc_to_visual, doc_id, task, split = args
        visuals = doc_to_visual(self._doc(task, split, doc_id)) if doc_to_visual is not None else []
        return self._conversation(context, visuals)

    def _reply(self, conversations: list[dict], gen_kwargs: dict) -> list[str]:
        """Replies to a batch of conversations under one set of gen_kwargs, cut at its `until` strings."""
        from nexus_o.inference.text import generate_text

        max_new_tokens, until, options = generation_options(gen_kwargs, self.max_new_tokens)
        replies = []
        for text in generate_text(self.model, self.processor, conversations, max_new_tokens, **options):
            for stop in until:
                text = text.split(stop)[0]
            replies.append(text)
        return replies

    def generate_until(self, requests) -> list[str]:
        """Greedy (or, with temperature > 0 and do_sample, sampled) replies cut at the `until` strings."""
        replies: list[str] = []
        batch: list = []
        bar = tqdm(total=len(requests), desc="nexus-o responding", disable=self.rank != 0)

        def gen_kwargs_of(request) -> dict:
            return request.args[2] if not self.is_simple else request.args[1]

        def flush():
            conversations = [self._request_conversation(r.args) for r in batch]
            replies.extend(self._reply(conversations, gen_kwargs_of(batch[0])))
            bar.update(len(batch))
            batch.clear()

        for request in requests:
            if batch and (len(batch) == self.batch_size or _key(gen_kwargs_of(request)) != _key(gen_kwargs_of(batch[0]))):
                flush()
            batch.append(request)
        if batch:
            flush()
        bar.close()
        return replies

    def generate_until_multi_round(self, requests) -> list[list[str]]:
        """Per request, the reply of every round. Round 0 is the request itself; from round 1 on the
        task's ``doc_to_text(doc, previous_output=..., round_idx=k, previous_round_info=...)`` returns
        ``(visuals, context, terminal, previous_output, round_info)``; a terminal round ends it."""
        out = []
        for request in tqdm(requests, desc="nexus-o multi-round", disable=self.rank != 0):
            context, gen_kwargs, doc_to_visual, doc_to_text, doc_id, task, split = request.args
            doc = self._doc(task, split, doc_id)
            gen_kwargs = dict(gen_kwargs)
            visuals = doc_to_visual(doc) if doc_to_visual is not None else []
            rounds: list[str] = []
            info = None
            for round_idx in range(MAX_ROUNDS + 1):
                if round_idx:
                    payload = doc_to_text(doc, previous_output=list(rounds), round_idx=round_idx,
                                          previous_round_info=info)
                    visuals, context, terminal, previous, info = _round_payload(payload, task, round_idx, 5)
                    rounds = list(previous) if previous is not None else rounds
                    if terminal:
                        break
                rounds.append(self._reply([self._conversation(context, visuals)], gen_kwargs)[0])
            else:
                raise RuntimeError(f"task {task!r} gave no terminal signal after {MAX_ROUNDS} rounds")
            out.append(rounds)
        return out

    @torch.inference_mode()
    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        """(sum of log p(continuation tokens | prompt), whether greedy decoding would produce them)."""
        out = []
        for request in tqdm(requests, desc="nexus-o loglikelihood", disable=self.rank != 0):
            context, target, doc_to_visual, doc_id, task, split = request.args
            continuation = target if isinstance(target, str) else target(self._doc(task, split, doc_id))
            conversation = self._request_conversation((context, None, doc_to_visual, doc_id, task, split))
            out.append(self.continuation_logprob(conversation, continuation))
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


class NexusOLmmsChatModel(NexusOLmmsModel):
    """Chat mode: requests carry the task's ``doc_to_messages``; the conversation goes in as written."""

    is_simple = False

    def _request_conversation(self, args: tuple) -> dict:
        _, doc_to_messages, _, doc_id, task, split = args
        return {"messages": chat_messages(doc_to_messages(self._doc(task, split, doc_id)), f"{task}[{doc_id}]")}

    def generate_until_multi_round(self, requests) -> list[list[str]]:
        """Per request, the reply of every round. From round 1 on, ``doc_to_messages(doc, round_idx=k,
        previous_output=..., previous_round_info=...)`` returns ``(messages, terminal, previous_output,
        round_info)``, lmms-eval's chat-mode round protocol."""
        out = []
        for request in tqdm(requests, desc="nexus-o multi-round", disable=self.rank != 0):
            _, doc_to_messages, gen_kwargs, doc_id, task, split = request.args
            doc, where = self._doc(task, split, doc_id), f"{task}[{doc_id}]"
            messages, rounds, info = doc_to_messages(doc), [], None
            for round_idx in range(MAX_ROUNDS + 1):
                if round_idx:
                    payload = doc_to_messages(doc, round_idx=round_idx, previous_output=list(rounds),
                                              previous_round_info=info)
                    messages, terminal, previous, info = _round_payload(payload, task, round_idx, 4)
                    rounds = list(previous) if previous is not None else rounds
                    if terminal:
                        break
                conversation = {"messages": chat_messages(messages, f"{where} round {round_idx}")}
                rounds.append(self._reply([conversation], dict(gen_kwargs))[0])
            else:
                raise RuntimeError(f"task {task!r} gave no terminal signal after {MAX_ROUNDS} rounds")
            out.append(rounds)
        return out

    def loglikelihood(self, requests):
        raise NotImplementedError("lmms-eval builds log-likelihood requests only for simple models; run "
                                  "such tasks with --force_simple (nexus_o's simple mode)")


def _round_payload(payload, task: str, round_idx: int, size: int) -> tuple:
    if not (isinstance(payload, tuple) and len(payload) == size):
        raise ValueError(f"task {task!r}, round {round_idx}: the round function must return a {size}-tuple "
                         f"(lmms-eval's multi-round protocol), got {type(payload).__name__}")
    return payload


def chat_messages(messages, where: str) -> list[dict]:
    """lmms-eval `ChatMessages` (or their dicts) -> our chat messages, content parts kept in order.

    Parts: ``{"type": "text", "text"}`` as is; ``{"type": "image" | "audio" | "video", "url": X}``
    -> ``{"type": kind, kind: X}`` (PIL image, media path, ``{"array", "sampling_rate"}`` audio).
    """
    if hasattr(messages, "messages"):  # a ChatMessages object
        messages = messages.messages
    out = []
    for m, message in enumerate(messages):
        if hasattr(message, "model_dump"):
            message = message.model_dump()
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        parts = []
        for p, part in enumerate(content or []):
            if hasattr(part, "model_dump"):
                part = part.model_dump()
            kind = part.get("type")
            if kind == "text":
                parts.append({"type": "text", "text": part["text"]})
            elif kind in ("image", "audio", "video"):
                source = part.get("url")
                if isinstance(source, dict) and ("video_start" in source or "video_end" in source):
                    raise ValueError(f"{where}: message {m} part {p}: video clips with start/end times are not "
                                     f"supported; cut the clip and pass its path")
                parts.append({"type": kind, kind: source})
            else:
                raise ValueError(f"{where}: message {m} part {p} has type {kind!r}; expected text, image, audio "
                                 f"or video")
        out.append({"role": message["role"], "content": parts})
    return out


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


def _lmms_base() -> type:
    try:
        from lmms_eval.api.model import lmms
    except ImportError as err:
        raise ImportError("lmms-eval is not installed: bash scripts/install.sh installs it (pip install "
                          "--no-deps lmms-eval==0.7.3 plus nexus-o[harness]; see docs/harnesses.md)") from err
    return lmms


@cache
def lmms_class() -> type:
    """`NexusOLmmsModel` mixed with lmms-eval's `lmms` base class (lmms-eval must be installed)."""
    return type("NexusOLmms", (NexusOLmmsModel, _lmms_base()), {"__module__": MODULE, "__qualname__": "NexusOLmms"})


@cache
def lmms_chat_class() -> type:
    """`NexusOLmmsChatModel` mixed with lmms-eval's `lmms` base class."""
    return type("NexusOLmmsChat", (NexusOLmmsChatModel, _lmms_base()),
                {"__module__": MODULE, "__qualname__": "NexusOLmmsChat"})


def __getattr__(name: str):
    # PEP 562: the class paths exist once lmms-eval is importable.
    if name == "NexusOLmms":
        return lmms_class()
    if name == "NexusOLmmsChat":
        return lmms_chat_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def lmms_manifest(name: str = DEFAULT_NAME):
    """lmms-eval's `ModelManifest` for nexus-o: chat and simple classes, by import path.

    The target of this package's ``lmms_eval.models`` entry point, which lmms-eval loads at import.
    """
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id=name, simple_class_path=CLASS_PATH, chat_class_path=CHAT_CLASS_PATH)


def register_lmms_eval(name: str = DEFAULT_NAME) -> str:
    """Register nexus-o in lmms-eval's model registry under `name` (for an uninstalled checkout)."""
    _lmms_base()
    from lmms_eval.models import MODEL_REGISTRY_V2

    MODEL_REGISTRY_V2.register_manifest(lmms_manifest(name), overwrite=True)
    return name


def main() -> None:
    """`python -m nexus_o.eval.harness.lmms_eval ARGS`: lmms-eval's CLI, model `nexus_o` registered."""
    register_lmms_eval()
    from lmms_eval.__main__ import cli_evaluate

    cli_evaluate()


if __name__ == "__main__":
    main()
