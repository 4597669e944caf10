"""The package's layout rules (README, "Layout"): no folder imports one that imports it back, and the label schema
exists once. (What the remote-code files may import is tested in test_remote_code.py.)"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = {"tests", "benchmarks", "build", "examples"}


def _unit(root: Path, module: str) -> str:
    """The folder (or top-level module) a dotted module path inside the package belongs to."""
    first = module.split(".")[0]
    if (root / first).is_dir() or (root / f"{first}.py").exists():
        return first
    return "__init__"  # `from faceinsight import X`: the package's own __init__


def imports_between_units(root: Path = ROOT) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        relative = path.relative_to(root)
        if relative.parts[0] in SKIPPED or relative.parts[0].startswith("."):
            continue
        source = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        package = list(relative.parts[:-1])
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[: len(package) - node.level + 1]
                names = [node.module] if node.module else [alias.name for alias in node.names]
                modules = [".".join(base + [name]) for name in names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("faceinsight"):
                rest = node.module[len("faceinsight.") :]
                modules = [rest] if rest else [alias.name for alias in node.names]
            elif isinstance(node, ast.Import):
                modules = [a.name[len("faceinsight.") :] for a in node.names if a.name.startswith("faceinsight.")]
            for module in modules:
                target = _unit(root, module) if module else "__init__"
                if target != source:
                    edges.setdefault(source, set()).add(target)
    return edges


def test_no_folder_imports_one_that_imports_it_back():
    edges = imports_between_units()
    assert {"commands", "training", "evaluation", "hub", "modeling"} <= set(edges) | {"modeling"}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(unit for unit in edges if reaches(unit, unit, {unit}))
    assert not cycles, f"import cycles through: {cycles} ({ {u: sorted(edges[u]) for u in cycles} })"
    assert "commands" not in set().union(*(edges[u] for u in edges if u not in ("cli", "commands")))


def test_the_schema_is_written_once():
    """The age bins and the parse-this-image sentinel are spelled out only in the schema module."""
    age_bins = '"30-39", "40-49"'
    holders = [
        str(p.relative_to(ROOT))
        for p in ROOT.rglob("*.py")
        if p.relative_to(ROOT).parts[0] not in SKIPPED and age_bins in p.read_text()
    ]
    assert holders == ["modeling/schema_faceinsight.py"], holders


def test_modules_that_moved_still_import_with_a_warning():
    """Modules folded into their neighbours keep their old import path for a release: the same objects, and a
    FutureWarning naming the new home (in a fresh process, where nothing has imported them yet)."""
    import subprocess
    import sys

    script = """
import warnings
moves = {
    "faceinsight.outputs": ("faceinsight.folders", ["output_dir", "OutputDirError", "MARKER"]),
    "faceinsight.hub.sources": ("faceinsight.folders", ["check_model_source", "looks_local"]),
    "faceinsight.training.collator": ("faceinsight.training.trainer", ["FaceInsightCollator", "parsing_maps_from"]),
    "faceinsight.training.knowledge": ("faceinsight.modeling.knowledge_faceinsight", ["derive_knowledge", "held_out_rules"]),
}
import importlib
for old, (new, names) in moves.items():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    messages = [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]
    assert any(old in m and new in m for m in messages), (old, messages)
    target = importlib.import_module(new)
    for name in names:
        assert getattr(module, name) is getattr(target, name), (old, name)
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"
