"""Training data: JSONL manifests, validation, datasets and task templates.

- ``schema``: the sample schema (pydantic), ``Sample``; OpenAI-style content parts accepted.
- ``manifest``: ``read_manifest``, ``validate_manifest`` -> ``ValidationReport``, ``ManifestError``.
- ``media_checks``: audio / image / video / codes loading and decode checks (validation).
- ``dataset``: ``load_manifest_dataset`` (Hugging Face ``datasets``).
- ``templates``: ``render_task``, ``render_sample`` (prompt variants, English and Chinese).

Modules are imported directly (``from nexus_o.data.dataset import ...``) so that importing
this package stays cheap.
"""
