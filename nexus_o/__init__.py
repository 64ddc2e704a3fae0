"""nexus-o: the open implementation of the NEXUS-O omni-modal pipeline.

Vision + audio + language in, text + speech out. The public names live here:

    from nexus_o import load_model
    omni = load_model("tiny")                      # or a trained checkpoint folder
    reply = omni.chat([{"role": "user", "content": "hi"}], modalities=["text", "audio"])

`NexusOConfig`, `NexusOForConditionalGeneration`, `NexusOProcessor`, `load_model`, `OmniModel`
(model + processor + codec; its `chat` is the chat entry point), `from_components` and
`build_preset`. They load on first use, so `import nexus_o` stays cheap.

Subpackages, lower layers first (imports point downwards only; tests/test_layers.py checks):
config, processing, speech (TTS/ASR backends), codecs, data, models, inference, bundle (model +
processor + codec), train, eval, synth, serve; quickstart and the CLI on top.
"""

from nexus_o.version import __version__

_PUBLIC = {
    "NexusOConfig": "nexus_o.models.configuration",
    "NexusOForConditionalGeneration": "nexus_o.models.modeling",
    "NexusOProcessor": "nexus_o.processing.processor",
    "OmniModel": "nexus_o.bundle.omni",
    "load_model": "nexus_o.bundle.loading",
    "build_preset": "nexus_o.bundle.loading",
    "from_components": "nexus_o.bundle.from_components",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    """Import a public name on first use (PEP 562): importing nexus_o does not import torch."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'nexus_o' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
