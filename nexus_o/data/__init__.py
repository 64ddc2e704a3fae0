"""Training data: JSONL manifests, validation, datasets, batching and task templates.

- ``schema``: the sample schema (pydantic), ``Sample``; OpenAI-style content parts accepted.
- ``manifest``: ``read_manifest``, ``validate_manifest`` -> ``ValidationReport``, ``ManifestError``.
- ``media``: audio / image / video / codes loading and decode checks.
- ``dataset``: ``load_manifest_dataset`` (Hugging Face ``datasets``), ``MediaLoader``, ``with_media``.
- ``buckets``: ``batch_by_budget``, ``BudgetBatchSampler`` (length-grouped batches).
- ``collate``: ``pad_features``, ``pack_features``, ``OmniCollator``.
- ``templates``: ``render_task``, ``render_sample`` (prompt variants, English and Chinese).

Modules are imported directly (``from nexus_o.data.dataset import ...``) so that importing
this package stays cheap.
"""
