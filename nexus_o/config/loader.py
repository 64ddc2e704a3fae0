"""Strict run configs: pydantic models, read from YAML, with `key=value` overrides.

An unknown key anywhere is an error naming its dotted path; a value of the wrong type names the
field and the file. Overrides use dotted paths (`optim.lr=1e-4`, `phases.0.max_steps=20`) and
YAML syntax for values (`trainable=[llm,lm_head]`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

T = TypeVar("T", bound=BaseModel)


class StrictModel(BaseModel):
    """The one strict base of nexus_o's pydantic models (run configs, manifest lines, request bodies).

    Unknown keys are errors and assignments are validated. A subclass that needs more passes
    pydantic's class keywords, e.g. `class Part(StrictModel, strict=True)` refuses "1" for an int.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class ConfigError(ValueError):
    """A run config is invalid; the message names the file and the field."""


def _set_dotted(tree: dict, dotted: str, value: Any, source: str) -> None:
    keys = dotted.split(".")
    node: Any = tree
    for i, key in enumerate(keys[:-1]):
        if isinstance(node, list):
            node = node[int(key)]
            continue
        if key not in node or not isinstance(node[key], (dict, list)):
            node[key] = {}
        node = node[key]
    last = keys[-1]
    if isinstance(node, list):
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(f"{source}: cannot set {dotted!r}: its parent is not a mapping")


def parse_overrides(overrides: list[str]) -> list[tuple[str, Any]]:
    """`["a.b=1", "c=[x, y]"]` -> [("a.b", 1), ("c", ["x", "y"])]; values parsed as YAML."""
    pairs = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value")
        key, raw = item.split("=", 1)
        pairs.append((key.strip(), yaml.safe_load(raw) if raw.strip() else None))
    return pairs


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None,
                base: dict | None = None) -> T:
    """Read `path` (YAML) into `cls`, apply overrides; relative paths stay as written."""
    tree: dict = dict(base or {})
    source = "config"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from err
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping, got {type(loaded).__name__}")
        tree.update(loaded)
    for key, value in parse_overrides(overrides or []):
        _set_dotted(tree, key, value, source)
    try:
        return cls.model_validate(tree)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            where = ".".join(str(p) for p in e["loc"]) or "(top level)"
            what = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
            problems.append(f"  {where}: {what}")
        raise ConfigError(f"{source}: invalid {cls.__name__}:\n" + "\n".join(problems)) from None


def dump_config(config: BaseModel, path: str | Path) -> None:
    """Write the resolved config as YAML (what was actually run)."""
    Path(path).write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True))
