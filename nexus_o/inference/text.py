"""Text replies: one conversation (or a batch) in, decoded assistant text out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


@torch.inference_mode()
def generate_text(model, processor, conversations: list | dict, max_new_tokens: int = 64,
                  base_dir: str | Path | None = None, **generate_kwargs: Any) -> list[str]:
    """Reply to each conversation (messages list or manifest-shaped dict); greedy by default.

    Returns one string per conversation: the new tokens, decoded without special tokens.
    """
    batch = processor.apply_chat_template(conversations, add_generation_prompt=True, base_dir=base_dir)
    batch = batch.to(model.device)
    generate_kwargs.setdefault("do_sample", False)
    eos = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    out = model.generate(**batch, max_new_tokens=max_new_tokens, eos_token_id=eos,
                         pad_token_id=processor.tokenizer.pad_token_id, **generate_kwargs)
    new = out[:, batch["input_ids"].shape[1]:]
    return [text.strip() for text in processor.batch_decode(new, skip_special_tokens=True)]
