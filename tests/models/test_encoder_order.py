"""touch_all_encoders: every batch calls the same modules in the same order, whatever it holds.

ZeRO-3 records the module order of one training step, requires it to be the same on every rank
and prefetches later steps by it; FSDP gathers each block's shards as it runs. So with
touch_all_encoders a batch of audio, of an image, of text, of an image and a video, or of two
clips must call every module the same number of times in one order, and its gradients must
arrive in one order (ZeRO-3 reduces them as they do). The losses stay those of the plain path.
"""

import numpy as np
import pytest
import torch
from PIL import Image

from nexus_o.bundle.loading import build_preset
from tests.conftest import tone


def _row(content: str, **media) -> dict:
    messages = [{"role": "user", "content": content}, {"role": "assistant", "content": "red"}]
    return {"messages": messages, "images": media.get("images"), "videos": media.get("videos"),
            "audios": media.get("audios")}


def _trace(model, batch: dict) -> tuple[list[str], list[str], float]:
    """(modules in forward call order, trainable parameters in gradient order, loss)."""
    names = {module: name for name, module in model.named_modules()}
    calls, grads = [], []
    hooks = [m.register_forward_pre_hook(lambda m, args: calls.append(names[m])) for m in model.modules()]
    hooks += [p.register_post_accumulate_grad_hook(lambda p, n=n: grads.append(n))
              for n, p in model.named_parameters() if p.requires_grad]
    try:
        loss = model(**batch, touch_all_encoders=True).loss
        loss.backward()
    finally:
        for hook in hooks:
            hook.remove()
        model.zero_grad(set_to_none=True)
    return calls, grads, float(loss.detach())


def test_every_batch_calls_the_modules_in_one_order(one_thread):
    model, processor = build_preset("tiny", seed=0)
    model.train()
    model.audio_encoder.requires_grad_(False)  # stage 2: frozen encoders, trained adapters and LLM
    model.vl.model.visual.requires_grad_(False)
    model.vl.model.visual.merger.requires_grad_(True)
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (56, 56, 3), dtype=np.uint8))
    video = rng.integers(0, 255, (4, 56, 56, 3), dtype=np.uint8)
    rows = {"audio": _row("<audio>Hi", audios=[tone(0.5)]), "image": _row("<image>Hi", images=[image]),
            "text": _row("Hi"), "image and video": _row("<image><video>Hi", images=[image], videos=[video]),
            "two clips": _row("<audio><audio>Hi", audios=[tone(0.5), tone(0.7)])}
    first = None
    for name, row in rows.items():
        batch = processor.apply_chat_template([row], add_generation_prompt=False, return_labels=True)
        calls, grads, loss = _trace(model, batch)
        with torch.no_grad():
            assert loss == pytest.approx(float(model(**batch).loss), rel=1e-5), name  # the touches add 0
        if first is None:
            first = calls, grads
            continue
        assert calls == first[0], f"{name}: modules called in another order or count than for audio"
        assert grads == first[1], f"{name}: gradients arrive in another order than for audio"
