"""The layers of nexus_o: imports between subpackages point downwards only, so they form no cycle.

Every import is read from the source with `ast` (module-level, inside functions and under
`TYPE_CHECKING` alike), so an import hidden in a function cannot hide a cycle either.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import nexus_o

PACKAGE = Path(nexus_o.__file__).parent

# Lower layers first. A module may import its own layer and the layers before it, never after.
# Names on one line are one layer (they must not import each other at all).
LAYERS: list[tuple[str, ...]] = [
    ("version", "config"),
    ("processing",),   # processor, chat template, media decoding, audio windows
    ("speech",),       # TTS and ASR backends, language detection: used by synth and eval
    ("codecs",),       # speech codecs; models check their speech decoder against one
    ("data",),         # manifests and datasets
    ("models",),       # plain model code
    ("inference",),    # generation, chat, streaming on a given model + processor + codec
    ("bundle",),       # model + processor + codec: presets, loading, from_components, OmniModel
    ("train", "eval"),
    ("synth",),        # checks its speech with eval's metrics
    ("serve",),
    ("quickstart",),
    ("cli", "__init__"),
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    """(imported nexus_o module, line) for every import in the file."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "nexus_o":  # `from nexus_o import x`: x is a module or a name of the root
                found += [(f"nexus_o.{alias.name}" if (PACKAGE / alias.name).exists()
                           or (PACKAGE / f"{alias.name}.py").exists() else "nexus_o", node.lineno)
                          for alias in node.names]
            else:
                found.append((target, node.lineno))
    return [(name, line) for name, line in found if name == "nexus_o" or name.startswith("nexus_o.")]


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def import_edges() -> dict[tuple[str, str], list[str]]:
    """{(from layer, to layer): ["file:line", ...]} for imports that cross layers."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _layer(_module_name(path))
        for target, line in _imports(path):
            if _layer(target) != source:
                edges[(source, _layer(target))].append(f"{path.relative_to(PACKAGE.parent)}:{line}")
    return dict(edges)


def find_cycle(edges) -> list[str] | None:
    """One cycle of the graph as a closed path [a, b, ..., a], or None."""
    graph = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_every_subpackage_and_top_module_has_a_layer():
    names = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    names |= {p.stem for p in PACKAGE.glob("*.py")}
    assert names - set(RANK) == set(), "add the new subpackage or module to LAYERS"


def test_subpackages_import_each_other_without_cycles():
    edges = import_edges()
    cycle = find_cycle(edges)
    if cycle:
        lines = [f"{a} -> {b}: {', '.join(edges[(a, b)][:3])}" for a, b in zip(cycle, cycle[1:])]
        raise AssertionError("import cycle between subpackages:\n" + "\n".join(lines))


def test_imports_point_down_the_layers():
    upward = [f"{a} -> {b} ({RANK[a]} -> {RANK[b]}): {', '.join(where)}"
              for (a, b), where in sorted(import_edges().items()) if RANK[b] >= RANK[a]]
    assert not upward, "imports that point up (or across) the layers in LAYERS:\n" + "\n".join(upward)


def test_the_checks_catch_a_cycle_and_an_upward_import():
    edges = {("models", "inference"): ["m.py:1"], ("inference", "models"): ["i.py:1"], ("data", "config"): ["d:1"]}
    assert find_cycle(edges) in (["inference", "models", "inference"], ["models", "inference", "models"])
    assert find_cycle({("data", "config"): []}) is None
    assert RANK["inference"] > RANK["models"]  # so models -> inference is reported as pointing up
