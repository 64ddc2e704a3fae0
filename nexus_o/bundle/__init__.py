"""The model bundle: a model with its processor and codec, and every way to get one.

`load_model` (a preset name or a saved folder), `build_preset`, `from_components` (local
Qwen2.5-VL + Whisper checkpoints), the tiny world's model, CTranslate2 Whisper conversion, and
`OmniModel`, the bundle itself, whose `chat` is the library's chat entry point.
"""
