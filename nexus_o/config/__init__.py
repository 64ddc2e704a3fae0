"""Run configs (train stage, synth, eval, serve): typed, strict, YAML + key=value overrides."""
