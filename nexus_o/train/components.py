"""Named components of the model, freezing by name, and per-component parameter groups.

The names are the paper's: vision_encoder (the ViT blocks), vision_adapter (the patch merger),
audio_encoder (Whisper), audio_adapter, llm (the language model with its token embeddings),
lm_head, speech_decoder. Where the LM head is tied to the embeddings, it trains with `llm`.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn

from nexus_o.train.config import COMPONENTS

# Fixed by design, never trained: Whisper's sinusoidal position table.
ALWAYS_FROZEN = {"audio_encoder.embed_positions.weight"}


def component_parameters(model, name: str) -> Iterator[tuple[str, nn.Parameter]]:
    """(qualified name, parameter) of component `name` of a `NexusOForConditionalGeneration`."""
    visual = model.vl.model.visual
    if name == "vision_encoder":
        yield from ((f"vl.model.visual.{n}", p) for n, p in visual.named_parameters() if not n.startswith("merger."))
    elif name == "vision_adapter":
        yield from ((f"vl.model.visual.merger.{n}", p) for n, p in visual.merger.named_parameters())
    elif name == "audio_encoder":
        yield from ((f"audio_encoder.{n}", p) for n, p in model.audio_encoder.named_parameters())
    elif name == "audio_adapter":
        yield from ((f"audio_adapter.{n}", p) for n, p in model.audio_adapter.named_parameters())
    elif name == "llm":
        yield from ((f"vl.model.language_model.{n}", p) for n, p in model.vl.model.language_model.named_parameters())
    elif name == "lm_head":
        head, embed = model.vl.lm_head.weight, model.get_input_embeddings().weight
        if head is not embed:  # tied heads train with the embeddings ("llm")
            yield "vl.lm_head.weight", head
    elif name == "speech_decoder":
        if model.speech_decoder is not None:
            yield from ((f"speech_decoder.{n}", p) for n, p in model.speech_decoder.named_parameters())
    else:
        raise ValueError(f"unknown component {name!r}; components: {list(COMPONENTS)}")


def apply_freeze(model, trainable: list[str]) -> dict[str, tuple[int, int]]:
    """Freeze everything but `trainable`; returns {component: (trainable params, all params)}.

    Every parameter of the model must belong to exactly one component, so that nothing trains
    or freezes by accident.
    """
    if "speech_decoder" in trainable and model.speech_decoder is None:
        raise ValueError("speech_decoder is trainable but the model has no speech decoder; "
                         "set model.speech_decoder in the config to add one")
    owner: dict[int, tuple[str, str]] = {}
    for name in COMPONENTS:
        for qual, param in component_parameters(model, name):
            owner.setdefault(id(param), (name, qual))
    stray = [n for n, p in model.named_parameters() if id(p) not in owner]
    if stray:
        raise RuntimeError(f"parameters outside every component: {stray[:5]}")
    counts = {name: [0, 0] for name in COMPONENTS}
    for param in model.parameters():
        name, qual = owner[id(param)]
        train = name in trainable and qual not in ALWAYS_FROZEN
        param.requires_grad_(train)
        counts[name][1] += param.numel()
        counts[name][0] += param.numel() if train else 0
    return {name: (t, n) for name, (t, n) in counts.items()}


def param_groups(model, lr: float, lr_per_component: dict[str, float], weight_decay: float) -> list[dict]:
    """AdamW groups: per trainable component, with its own learning rate; no decay on biases/norms."""
    groups = []
    seen: set[int] = set()
    for name in COMPONENTS:
        decay, no_decay = [], []
        for qual, param in component_parameters(model, name):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            (no_decay if param.ndim < 2 or "norm" in qual.lower() else decay).append(param)
        rate = lr_per_component.get(name, lr)
        if decay:
            groups.append({"params": decay, "lr": rate, "weight_decay": weight_decay, "component": name})
        if no_decay:
            groups.append({"params": no_decay, "lr": rate, "weight_decay": 0.0, "component": name})
    if not groups:
        raise ValueError("nothing to train: every component is frozen")
    return groups


def format_counts(counts: dict[str, tuple[int, int]]) -> str:
    """A table of trainable / total parameters per component."""
    lines = [f"{'component':<16}{'trainable':>14}{'total':>14}"]
    for name, (t, n) in counts.items():
        lines.append(f"{name:<16}{t:>14,}{n:>14,}")
    t_all, n_all = sum(t for t, _ in counts.values()), sum(n for _, n in counts.values())
    lines.append(f"{'all':<16}{t_all:>14,}{n_all:>14,}")
    return "\n".join(lines)
