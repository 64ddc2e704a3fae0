"""Adapters that let the field's evaluation harnesses drive a NEXUS-O model (see docs/harnesses.md).

- `vlmevalkit.NexusOVLMEval`: VLMEvalKit's model interface (`generate(message, dataset)`,
  `use_custom_prompt`, `build_prompt`).
- `lmms_eval.NexusOLmmsModel`: lmms-eval's `lmms` interface (`generate_until`, `loglikelihood`).

Neither imports its harness at module level: both import and are tested without it.
"""
