"""The import graph of ``engine`` and ``actors``: no cycles (not even through imports deferred into
a function or kept under ``TYPE_CHECKING``), and the sans-IO core imports no I/O library, however
indirectly.

The graph is read from the source (``ast``), so it sees every import statement wherever it is;
importing the packages would hide the deferred ones.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "actors")

#: What must stay free of I/O (a package name covers every module in it): the wire format, the
#: market catalog and validation, the sans-IO core (registry state machine, planner, rate limits,
#: snapshot book), events, errors, config, and the metrics records.
SANS_IO = (
    "actors.intensity",
    "actors.strategy",
    "engine.errors",
    "engine.events",
    "engine.config",
    "engine.wire",
    "engine.markets",
    "engine.core",
    "engine.routing.dedupe",
    "engine.debug_address",
    "engine.observability.frame_report",
    "engine.observability.journal",
    "engine.observability.jsonable",
    "engine.observability.operator_events",
    "engine.observability.throttle",
    "engine.observability.metrics",
    "engine.observability.records",
)
IO_LIBRARIES = frozenset({"trio", "trio_websocket", "websockets", "httpx", "anyio", "socket"})


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The project module ``name`` lives in (``engine.x.Y`` -> ``engine.x``), or None."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> tuple[set[str], set[str]]:
    """(project modules, outside top-level packages) that ``module`` imports anywhere."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    inside: set[str] = set()
    outside: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            # ``from engine import x`` imports the module engine.x when there is one.
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        for name in names:
            owner = _owner(name)
            if owner is None:
                outside.add(name.partition(".")[0])
            elif owner != module:
                inside.add(owner)
    return inside, outside


GRAPH = {module: _imports(module) for module in MODULES}


def _cycles() -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(GRAPH[node][0]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    return found


def test_the_graph_is_read() -> None:
    # Guards the reader itself: a broken parse would find no edges and no cycles.
    assert len(MODULES) > 60
    assert "engine.runtime.registry_messages" in GRAPH["engine.runtime.ticket"][0]
    assert (
        "trio" in GRAPH["engine.routing.router"][1] or "trio" in GRAPH["engine.routing.buffer"][1]
    )


def test_no_import_cycles_not_even_deferred_ones() -> None:
    cycles = _cycles()
    described = [
        " <-> ".join(cycle)
        + ": "
        + "; ".join(
            f"{module} imports {', '.join(sorted(GRAPH[module][0] & set(cycle)))}"
            for module in cycle
        )
        for cycle in cycles
    ]
    assert not cycles, "import cycles:\n" + "\n".join(described)


def _parents(module: str) -> list[str]:
    """The packages whose ``__init__`` runs when ``module`` is imported, but the two roots (the
    public faces ``engine`` and ``actors`` import everything and are not a dependency of the
    code)."""
    parts = module.split(".")
    return [".".join(parts[:n]) for n in range(2, len(parts)) if ".".join(parts[:n]) in MODULES]


def test_the_sans_io_core_imports_no_io_library_even_indirectly() -> None:
    listed = [m for m in MODULES for entry in SANS_IO if m == entry or m.startswith(entry + ".")]
    for entry in SANS_IO:
        assert entry in MODULES, f"{entry} is listed as sans-IO but does not exist"
    assert len(listed) > 30
    for module in listed:
        seen: set[str] = set()
        pending = [module]
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            pending.extend(GRAPH[current][0])
            pending.extend(_parents(current))
        via = {
            other: sorted(GRAPH[other][1] & IO_LIBRARIES)
            for other in sorted(seen)
            if GRAPH[other][1] & IO_LIBRARIES
        }
        assert not via, f"{module} reaches I/O through {via}"


#: The layers of docs/DESIGN.md's package map, bottom up: a module may import its own layer and
#: the ones before it. Each entry is a package or module; a package covers all of its modules.
LAYERS: dict[str, tuple[str, ...]] = {
    "actors": ("actors",),
    "base": ("engine.errors", "engine.events", "engine._groups", "engine.debug_address"),
    "wire": ("engine.wire",),
    "config": ("engine.config",),
    "markets": ("engine.markets",),
    "core": ("engine.core",),
    "routing": ("engine.routing",),
    "observability": ("engine.observability",),
    "rest": ("engine.rest",),
    "transport": ("engine.transport",),
    "runtime": ("engine.runtime",),
    "facade": ("engine.facade",),
    "gateway": ("engine.gateway",),
    "testing": ("engine.testing",),
    "cli": ("engine.cli",),
}
ORDER = list(LAYERS)
#: Edges allowed against the order (none today).
LAYER_EXCEPTIONS: set[tuple[str, str]] = set()


def _within(module: str, entry: str) -> bool:
    return module == entry or module.startswith(entry + ".")


def _layer(module: str) -> str | None:
    for layer, entries in LAYERS.items():
        if any(_within(module, entry) for entry in entries):
            return layer
    return None


def test_every_module_has_a_layer_and_imports_only_below_it() -> None:
    unplaced = sorted(m for m in MODULES if m != "engine" and _layer(m) is None)
    assert not unplaced, f"modules in no layer of the package map: {unplaced}"
    wrong = []
    for module, (inside, _) in sorted(GRAPH.items()):
        mine = _layer(module)
        if mine is None:
            continue  # the package itself re-exports the public API
        for target in sorted(inside):
            theirs = _layer(target)
            if theirs is None or (mine, theirs) in LAYER_EXCEPTIONS:
                continue
            if ORDER.index(theirs) > ORDER.index(mine):
                wrong.append(f"{module} ({mine}) imports {target} ({theirs})")
    assert not wrong, "imports against the package map:\n" + "\n".join(wrong)


def test_the_emulator_does_not_build_on_the_engine_it_tests() -> None:
    uses = {
        f"{module} -> {target}"
        for module, (inside, _) in GRAPH.items()
        if _layer(module) == "testing"
        for target in inside
        if _layer(target)
        in ("routing", "observability", "rest", "transport", "runtime", "facade", "cli")
    }
    assert not uses, f"the emulator imports the engine's own machinery: {sorted(uses)}"


MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def test_modules_and_functions_stay_small() -> None:
    # One idea per module and per function: a longer one is several, or a table to extract.
    long_modules = []
    long_functions = []
    for module, path in sorted(MODULES.items()):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_MODULE_LINES:
            long_modules.append(f"{module}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{module}.{node.name}: {length} lines")
    assert not long_modules, f"modules over {MAX_MODULE_LINES} lines: {long_modules}"
    assert not long_functions, f"functions over {MAX_FUNCTION_LINES} lines: {long_functions}"
