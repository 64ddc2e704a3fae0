"""Manifests (JSONL), validation, datasets and collators."""
