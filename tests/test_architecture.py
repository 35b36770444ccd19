"""The shape of the house, as the README's *Architecture* section draws it: rooms by concern,
imports running one way, no circle, no module too long to read, and a pure ``selection/``.

Read from the source with ``ast`` (imports inside functions count too), so a lazy import
cannot hide an arrow that runs back up.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Each room's floor: a module may import only rooms on lower floors, or its own room.
#: Rooms on the same floor (jobs and loop; measure and local) never import each other.
FLOORS = {
    "selection": 0,
    "backend.settings": 1, "backend.errors": 1, "backend.outcome": 1, "backend.ids": 1,
    "backend.layout": 1.5,
    "backend.model": 2,
    "backend.model_key": 2.5,
    "backend.store": 3,
    "backend.labelstudio": 4,
    "backend.jobs": 5, "backend.loop": 5,
    "backend.measure": 6, "backend.local": 6,
    "backend.runtime": 7,
    "backend.web": 8, "backend.worker": 8,
    "backend.cli": 9,
}
#: Outside libraries that would make ``selection/`` more than arrays in, decisions out.
NOT_IN_SELECTION = ("flask", "label_studio_sdk", "httpx", "requests", "redis", "rq", "gunicorn", "werkzeug")
MAX_LINES = 400


def modules() -> dict[str, Path]:
    found = {}
    for package in ("backend", "selection"):
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def room(module: str) -> str:
    matches = [r for r in FLOORS if module == r or module.startswith(r + ".")]
    return max(matches, key=len) if matches else module


def project_edges() -> dict[str, set[str]]:
    known = modules()
    return {m: {i for i in imports(p) if i in known and i != m} for m, p in known.items()}


def test_every_module_belongs_to_a_room_with_a_floor():
    homeless = sorted(m for m in modules() if room(m) not in FLOORS and m != "backend")
    assert not homeless, f"modules outside the rooms of the README's Architecture table: {homeless}"


def test_imports_run_only_down_the_floors():
    upward = []
    for module, targets in project_edges().items():
        if module == "backend":
            continue
        here = room(module)
        for target in targets:
            there = room(target)
            if there != here and FLOORS[there] >= FLOORS[here]:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that run sideways or back up:\n" + "\n".join(sorted(upward))


def test_no_import_circle():
    edges = project_edges()
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                circles.append(trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    # A package's __init__ re-exporting its own module is not a circle of concepts.
    real = [c for c in circles if len({room(m) for m in c}) > 1 or not any(m == room(m) for m in c)]
    assert not real, "import circles:\n" + "\n".join(" -> ".join(c) for c in real)


@pytest.mark.parametrize("library", NOT_IN_SELECTION)
def test_selection_imports_no_client_or_server_library(library):
    offenders = [str(p.relative_to(REPO)) for m, p in modules().items() if m.startswith("selection")
                 and any(i == library or i.startswith(library + ".") for i in imports(p))]
    assert not offenders, f"{library} imported in {offenders}"


@pytest.mark.parametrize("library", ("label_studio_sdk", "httpx"))
def test_only_the_gateway_speaks_to_label_studio(library):
    offenders = [str(p.relative_to(REPO)) for m, p in modules().items() if room(m) != "backend.labelstudio"
                 and any(i == library or i.startswith(library + ".") for i in imports(p))]
    assert not offenders, f"{library} imported outside backend/labelstudio/ in {offenders}"


def test_no_module_is_too_long_to_read():
    long = {str(p.relative_to(REPO)): n for p in modules().values() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_every_backend_room_says_what_it_owns():
    silent = [r for r in FLOORS if r.startswith("backend.") and (REPO / r.replace(".", "/")).is_dir()
              and not ast.get_docstring(ast.parse((REPO / r.replace(".", "/") / "__init__.py").read_text()))]
    assert not silent, f"packages without a docstring saying what they own: {silent}"
