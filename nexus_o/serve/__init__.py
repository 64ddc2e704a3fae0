"""OpenAI-compatible HTTP server and web demo."""
