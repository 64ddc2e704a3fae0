"""Processor: chat template, placeholders, feature extraction, media loading."""
