"""nexus-o: the open implementation of the NEXUS-O omni-modal pipeline.

Vision + audio + language in, text + speech out. The package is laid out along the pipeline:
models (the model), codecs (speech codecs), processing (processor), data and synth (manifests and
data synthesis), train (three stages), eval (metrics, benchmarks, alignment analysis),
inference and serve (generation and the OpenAI-compatible server).
"""

__version__ = "0.1.0"
