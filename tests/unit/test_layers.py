"""The package's layers: imports point one way, and there is no import cycle.

Every import counts, at the top of a module or inside a function, and
also those only for the type checker: an upward import hidden in a
function is still an upward dependency. ``docs/design.md`` draws the same
layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Bottom to top; a module may import from its own layer and those below.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("selfheal", "selfheal.core")),
    ("edges", ("selfheal.edges", "selfheal.fleet")),
    ("config", ("selfheal.config",)),
    (
        "flow",
        (
            "selfheal.engine",
            "selfheal.facts",
            "selfheal.runner",
            "selfheal.hooks",
            "selfheal.budget_gate",
            "selfheal.verify",
            "selfheal.report_back",
        ),
    ),
    ("integrations", ("selfheal.check", "selfheal.wrap", "selfheal.checks")),
    ("commands", ("selfheal.commands",)),
    ("entry", ("selfheal.cli", "selfheal.__main__")),
]


def modules() -> dict[str, Path]:
    found = {}
    for base, package in ((ROOT / "selfheal", "selfheal"), (ROOT / "checks", "selfheal.checks")):
        for path in base.rglob("*.py"):
            parts = [package, *path.relative_to(base).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts).replace("selfheal.checks", "selfheal.checks", 1)] = path
    return found


def layer(module: str) -> int:
    best, best_len = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    assert best >= 0, f"{module} is in no layer: add it to LAYERS and to docs/design.md"
    return best


def imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The selfheal modules ``module`` imports, wherever the import stands."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names
            ]
        else:
            continue
        found.update(t for t in targets if t in known and t != module)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {module: imports(module, path, known) for module, path in known.items()}


def test_every_import_points_down_or_sideways() -> None:
    upward = [
        f"{module} ({LAYERS[layer(module)][0]}) imports {target} ({LAYERS[layer(target)][0]})"
        for module, targets in graph().items()
        for target in sorted(targets)
        if layer(target) > layer(module)
    ]
    assert upward == []


def test_core_imports_only_the_standard_library_and_core() -> None:
    known = modules()
    allowed_third_party: set[str] = set()
    for module, path in known.items():
        if layer(module) != 0:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            for name in names:
                top = name.split(".")[0]
                assert top == "selfheal" or top in STDLIB or top in allowed_third_party, (
                    f"{module} imports {name}: the core is standard library only"
                )


STDLIB = (
    frozenset(__import__("sys").stdlib_module_names)
    if hasattr(__import__("sys"), "stdlib_module_names")
    else frozenset()
)


def test_no_import_cycle() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)
    assert cycles == []


def test_the_graph_is_read_from_the_real_files() -> None:
    # A guard for the guard: a parser that found nothing would pass the tests above.
    edges = graph()
    assert "selfheal.core.decision" in edges["selfheal.engine"]
    assert len(edges) > 30


#: A module this long holds more than one idea: split it along them.
MAX_LINES = 400


def test_no_module_is_over_400_lines() -> None:
    long = {m: n for m, p in modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_docs_design_names_every_module_in_its_layer() -> None:
    # The layer diagram is the newcomer's map: a module missing from it is
    # a module nobody knows where to look for.
    text = (ROOT / "docs" / "design.md").read_text()
    missing = [m for m in modules() if f"`{m}`" not in text]
    assert missing == []
