"""Text replies: one conversation (or a batch) in, decoded assistant text out.

`prepare_inputs` is the one door to the model for prompts: it checks lengths (`LengthLimits`)
before the processor tokenises anything big and again on the exact token count, so a prompt
that cannot fit never reaches the model. `generate_text` prepares and generates; a
`CancelToken` stops it at the next decoding step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import BatchFeature, StoppingCriteriaList

from nexus_o.inference.cancel import CancelCriteria, CancelToken
from nexus_o.inference.limits import LengthLimits
from nexus_o.inference.reply_steps import ReplyDecoder


def as_conversations(conversations: list | dict) -> list:
    """One conversation (a message list or a manifest-shaped dict) or a list of them -> a list."""
    if isinstance(conversations, dict) or (conversations and isinstance(conversations[0], dict)
                                           and "role" in conversations[0]):
        return [conversations]
    return list(conversations)


def check_texts(conversation: list | dict, index: int | None = None) -> None:
    """Raise ValueError naming the field (messages[i].content[j].text) of text the tokenizer cannot
    take: lone UTF-16 surrogates, which Python strings may hold but UTF-8 cannot encode."""
    messages = conversation.get("messages", []) if isinstance(conversation, dict) else conversation
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            fields = [(f"messages[{i}].content", content)]
        else:
            fields = [(f"messages[{i}].content[{j}].text", part["text"]) for j, part in enumerate(content or [])
                      if isinstance(part, dict) and isinstance(part.get("text"), str)]
        for where, text in fields:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as err:
                batch = "" if index is None else f" (conversation {index} of the batch)"
                raise ValueError(f"{where}{batch} cannot be tokenized: {err.reason} ({text[err.start:err.end]!r} "
                                 f"at character {err.start})") from None


def prepare_inputs(model, processor, conversations: list | dict, max_new_tokens: int, *,
                   base_dir: str | Path | None = None, max_prompt_tokens: int | None = None,
                   add_generation_prompt: bool = True) -> BatchFeature:
    """Processor inputs for generation, after the length checks.

    Each conversation's texts must be tokenizable (`check_texts`) and its rendered text is checked
    against a lower bound on its length first (cheap), then the processed batch row by row (media
    placeholders expanded) with `max_new_tokens` after it.
    Returns the processor's `BatchFeature` (on CPU): input_ids [B, L], attention_mask [B, L], ...
    Raises `ContextLengthError` (a ValueError; its `index` names the conversation in a batch).
    """
    limits = LengthLimits.of(model, max_prompt_tokens)
    batch_list = as_conversations(conversations)
    several = len(batch_list) > 1
    for i, conversation in enumerate(batch_list):
        check_texts(conversation, index=i if several else None)
        text = processor.apply_chat_template(conversation, add_generation_prompt=add_generation_prompt,
                                             tokenize=False)
        limits.check_text(text, processor.tokenizer, index=i if several else None)
    batch = processor.apply_chat_template(batch_list, add_generation_prompt=add_generation_prompt,
                                          base_dir=base_dir)
    for i, length in enumerate(batch["attention_mask"].sum(dim=1).tolist()):
        limits.check(int(length), max_new_tokens, index=i if several else None)
    return batch


def cancel_criteria(cancel: CancelToken | None) -> dict:
    """`generate` keyword arguments that stop decoding once `cancel` is cancelled (none for None)."""
    return {} if cancel is None else {"stopping_criteria": StoppingCriteriaList([CancelCriteria(cancel)])}


@torch.inference_mode()
def generate_from_inputs(model, processor, inputs: BatchFeature, max_new_tokens: int, *,
                         cancel: CancelToken | None = None, **generate_kwargs: Any) -> list[str]:
    """Greedy (by default) replies to prepared inputs (`prepare_inputs`): one stripped string a row.

    On CUDA greedy replies decode through `ReplyDecoder` (static cache, the step replayed as a
    CUDA graph, all rows of the batch together); anything else through transformers'
    `generate`. With `cancel`, decoding stops at the step after it is cancelled and `Cancelled`
    is raised.
    """
    inputs = inputs.to(model.device)
    generate_kwargs.setdefault("do_sample", False)
    eos = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    greedy_only = set(generate_kwargs) <= {"do_sample", "min_new_tokens"} and not generate_kwargs["do_sample"]
    if model.device.type == "cuda" and greedy_only:
        rows: list[list[int]] = [[] for _ in range(inputs["input_ids"].shape[0])]
        for step in ReplyDecoder(model, eos).batch_steps(inputs, max_new_tokens, cancel, conditions=False,
                                                         min_new_tokens=generate_kwargs.get("min_new_tokens", 0)):
            for row, item in zip(rows, step):
                if item is not None and not item.empty:
                    row.append(item.token)
        return [text.strip() for text in processor.batch_decode(rows, skip_special_tokens=True)]
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, eos_token_id=eos,
                         pad_token_id=processor.tokenizer.pad_token_id, **cancel_criteria(cancel), **generate_kwargs)
    if cancel is not None:
        cancel.check()
    new = out[:, inputs["input_ids"].shape[1]:]
    return [text.strip() for text in processor.batch_decode(new, skip_special_tokens=True)]


def generate_text(model, processor, conversations: list | dict, max_new_tokens: int = 64,
                  base_dir: str | Path | None = None, *, max_prompt_tokens: int | None = None,
                  cancel: CancelToken | None = None, **generate_kwargs: Any) -> list[str]:
    """Reply to each conversation (messages list or manifest-shaped dict); greedy by default.

    Returns one string per conversation: the new tokens, decoded without special tokens.
    Raises `ContextLengthError` before any model work when a prompt does not fit (see
    `prepare_inputs`); with `cancel`, decoding stops at the step after it is cancelled and
    `Cancelled` is raised.
    """
    batch = prepare_inputs(model, processor, conversations, max_new_tokens, base_dir=base_dir,
                           max_prompt_tokens=max_prompt_tokens)
    return generate_from_inputs(model, processor, batch, max_new_tokens, cancel=cancel, **generate_kwargs)
