"""The layout's rules, checked on the source: imports only point down the rooms of the README's
Layout table, no module of one room imports another room's private names, and modules stay
small."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: room -> the rooms it may import (besides itself and intsim._version)
ALLOWED = {
    "kernels": set(),
    "core": {"kernels"},
    "nn": {"core", "kernels"},
    "datasets": set(),
    "models": {"nn", "core", "kernels"},
    "formats": {"core", "kernels"},
    "hw": {"formats", "models", "datasets", "nn", "core", "kernels"},
    "experiments": {"formats", "models", "datasets", "nn", "core", "kernels"},
    "cli": {"experiments", "hw", "formats", "models", "datasets", "nn", "core", "kernels"},
    "testing": {"core", "kernels"},
}


def _modules():
    for folder, prefix in ((ROOT / "intsim", "intsim"), (ROOT / "models", "intsim.models"),
                           (ROOT / "datasets", "intsim.datasets")):
        for p in folder.rglob("*.py"):
            rel = p.relative_to(folder).with_suffix("")
            name = ".".join((prefix, *rel.parts)).removesuffix(".__init__")
            yield name, p


def _room(module: str):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "intsim" else None


def _imports(tree):
    """Imported intsim modules, outside `if TYPE_CHECKING:` blocks."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            skip.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("intsim"):
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("intsim"):
                    yield a.name, []


MODULES = sorted(_modules())


@pytest.mark.parametrize("name, path", MODULES, ids=[m for m, _ in MODULES])
def test_imports_point_down(name, path):
    room = _room(name)
    if room in (None, "_version") or name == "intsim":
        return
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for target, names in _imports(tree):
        other = _room(target)
        if other in (room, "_version", None):
            continue
        assert other in ALLOWED[room], f"{name} imports {target}: {room} may not import {other}"
        private = [n for n in names if n.startswith("_") and not n.endswith("__")]
        assert not private, f"{name} imports private names {private} of {target}"


def test_no_module_is_large():
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in MODULES}
    big = {n: s for n, s in sizes.items() if s > 600}
    assert not big, f"modules over 600 lines: {big}"
