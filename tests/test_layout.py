"""The layout is the architecture: data flows one way, and no package imports from above.

The layers, lowest first. A module may import from its own package and from the layers
below it, never from one above: a newcomer can read the code bottom up, and a change to
a lower layer never needs a higher one.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import petrova

LAYERS: list[set[str]] = [
    {"errors", "__init__"},
    {"clock", "models", "terminal"},
    {"files"},  # the disk's sharp edges
    {"net"},  # the wire's and git's sharp edges: one HTTP layer, one git runner
    {"documents"},  # each file petrova reads, loaded and checked
    {"ledger"},  # observation: rules, store, record
    {"sync", "render", "delivery"},  # fetching, showing, sending
    {"fleet"},  # the fleet as a whole: the snapshot pipeline, the gate, the daily job
    {"probe", "migrate"},  # observing integrations; bringing repos in
    {"notify"},  # telling the humans: issues, chat, pin PRs
    {"commands"},  # the click layer
    {"cli", "__main__"},
]
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names}
ROOT = Path(petrova.__file__).parent


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("petrova."):
            found.append(node.module)
        elif isinstance(node, ast.ImportFrom) and node.module == "petrova":
            # ``from petrova import clock``: a package; ``__version__``: the package's own
            found += [f"petrova.{a.name if a.name in LEVEL else '__init__'}" for a in node.names]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("petrova.")]
    return found


def test_every_package_has_a_layer() -> None:
    tops = {p.name.removesuffix(".py") for p in ROOT.iterdir() if p.suffix == ".py" or p.is_dir()}
    tops -= {"__pycache__", "_contracts"}
    assert tops <= set(LEVEL), tops - set(LEVEL)


def test_no_module_imports_from_a_layer_above() -> None:
    upward = []
    for path in ROOT.rglob("*.py"):
        own = path.relative_to(ROOT).parts[0].removesuffix(".py")
        for module in _imports(path):
            other = module.split(".")[1]
            if other != own and LEVEL[other] > LEVEL[own]:
                upward.append(f"{path.relative_to(ROOT)} imports {module}")
    assert upward == []


def test_the_core_never_imports_click() -> None:
    core = [p for p in ROOT.rglob("*.py") if p.relative_to(ROOT).parts[0] not in ("commands",)]
    clicky = [
        str(p.relative_to(ROOT))
        for p in core
        if p.name not in ("cli.py", "__main__.py") and "import click" in p.read_text()
    ]
    assert clicky == []


def _design_code_map() -> list[tuple[int, list[str]]]:
    """docs/DESIGN.md's code map: (layer, packages) per row, in the table's order."""
    text = (ROOT.parent / "docs" / "DESIGN.md").read_text()
    section = text.split("## Code map", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].isdigit():
            names = re.findall(r"`([\w]+)(?:\.py|/)`", cells[1])
            rows.append((int(cells[0]), names))
    return rows


def test_the_code_map_in_design_md_is_this_layer_table() -> None:
    rows = _design_code_map()
    assert [layer for layer, _ in rows] == sorted(layer for layer, _ in rows), "out of order"
    documented = {name: layer for layer, names in rows for name in names}
    assert sum(len(names) for _, names in rows) == len(documented), "a package twice"
    assert documented == {name: level for name, level in LEVEL.items() if name != "__init__"}


def test_tests_start_child_processes_only_through_spawn() -> None:
    """A ``Popen`` a test forgets on a failed assertion is garbage-collected during a
    later test and fails it ("subprocess N is still running"): children are started
    through the ``spawn`` fixture, which reaps them however the test ends."""
    here = Path(__file__).parent
    starts = re.compile(r"\bPopen\(|create_subprocess_|multiprocessing|ProcessPoolExecutor")
    offenders = {
        path.relative_to(here).as_posix()
        for path in sorted(here.rglob("*.py"))
        if "node_modules" not in path.parts
        and path.name not in ("conftest.py", "test_layout.py")
        and starts.search(path.read_text())
    }
    assert not offenders, sorted(offenders)
