"""Speech tools that the pipeline uses but does not train: TTS and ASR backends, language detection.

Synthesis (`nexus_o.synth`) speaks and checks its data with them; evaluation (`nexus_o.eval`)
judges the model's speech with them. Backends load their engines lazily: importing is cheap.
"""
