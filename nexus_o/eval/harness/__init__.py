"""Adapters that let the field's evaluation harnesses drive a NEXUS-O model (see docs/harnesses.md).

- `lmms_eval`: lmms-eval's model interfaces, chat (`NexusOLmmsChat`) and simple (`NexusOLmms`,
  `generate_until`, `loglikelihood`, multi-round), registered through lmms-eval's entry points.
- `lmms_tasks`: local lmms-eval tasks from `nexus-o eval` benchmark files, scored by our metrics.
- `vlmevalkit.NexusOVLMEval`: VLMEvalKit's model interface (`generate(message, dataset)`,
  `use_custom_prompt`, `build_prompt`), and its custom-dataset TSV from a vqa benchmark.

None imports its harness at module level, so each imports without it.
"""
