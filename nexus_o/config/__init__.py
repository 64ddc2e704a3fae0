"""Run configs (train stage, synth, eval, serve): typed, strict, YAML + key=value overrides.

`StrictModel` is the one strict base of every pydantic model in nexus_o (run configs, manifest
lines, HTTP request bodies): an unknown key is an error that names it.
"""

from nexus_o.config.loader import ConfigError, StrictModel, dump_config, load_config

__all__ = ["ConfigError", "StrictModel", "dump_config", "load_config"]
