"""Audio data synthesis: filters, rewrite, TTS, ASR verification, the tiny world."""
