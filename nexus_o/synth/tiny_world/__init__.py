"""The tiny tri-modal world (SPEC §5): rendered shapes and digits, spoken words and questions, answers
as text and as speech of one target voice; built reproducibly from a seed (`build_tiny_world`)."""

from nexus_o.synth.tiny_world.build import build_tiny_world, build_world

__all__ = ["build_tiny_world", "build_world"]
