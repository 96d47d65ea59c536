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

#: Modules that must stay free of I/O: the wire format, the subscription state machine and
#: planner, rate limits, the snapshot book, validation against the catalog, events and errors.
SANS_IO = (
    "actors.intensity",
    "actors.strategy",
    "engine._book_rows",
    "engine._decode",
    "engine._decode_fields",
    "engine._decode_models",
    "engine._decode_nested",
    "engine._decode_replies",
    "engine._encode",
    "engine._facade_checks",
    "engine._frame_report",
    "engine._market_catalog",
    "engine._market_parking",
    "engine._market_validation",
    "engine._plan_efficiency",
    "engine._plan_inspect",
    "engine._plan_keys",
    "engine._plan_lifecycle",
    "engine._plan_packing",
    "engine._plan_records",
    "engine._plan_registry_base",
    "engine._plan_requests",
    "engine._plan_ticket",
    "engine._route_dedupe",
    "engine._snap_book",
    "engine.config",
    "engine.connection_state",
    "engine.errors",
    "engine.events",
    "engine.messages",
    "engine.planner",
    "engine.protocol",
    "engine.ratelimit",
    "engine.subscriptions",
    "engine.wire_keys",
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
    assert "engine.registry_messages" in GRAPH["engine.ticket"][0]
    assert "trio" in GRAPH["engine.router"][1] or "trio" in GRAPH["engine._route_buffer"][1]


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


def test_the_sans_io_core_imports_no_io_library_even_indirectly() -> None:
    for module in SANS_IO:
        assert module in MODULES, f"{module} is listed as sans-IO but does not exist"
        seen: set[str] = set()
        pending = [module]
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            pending.extend(GRAPH[current][0])
        via = {
            other: sorted(GRAPH[other][1] & IO_LIBRARIES)
            for other in sorted(seen)
            if GRAPH[other][1] & IO_LIBRARIES
        }
        assert not via, f"{module} reaches I/O through {via}"


#: The layers of docs/DESIGN.md's package map, bottom up: a module may import its own layer and
#: the ones before it (``testing`` and ``cli`` sit beside the facade: see LAYER_EXCEPTIONS).
LAYERS: dict[str, tuple[str, ...]] = {
    "actors": ("actors",),
    "wire": (
        "engine.protocol",
        "engine.messages",
        "engine.wire_keys",
        "engine._decode",
        "engine._encode",
        "engine.events",
        "engine.errors",
        "engine.config",
        "engine.connection_state",
        "engine._groups",
    ),
    "markets": ("engine._market_", "engine.markets"),
    "core": (
        "engine.ratelimit",
        "engine.planner",
        "engine.subscriptions",
        "engine._plan_",
        "engine._snap_book",
        "engine._book_rows",
        "engine._facade_checks",
    ),
    "routing": ("engine.router", "engine._route_", "engine.stream"),
    "transport": ("engine.transport", "engine._ws_core"),
    "runtime": (
        "engine.engine_core",
        "engine.registry_",
        "engine.ticket",
        "engine._ticket_",
        "engine.snapshots",
        "engine._snap_",
        "engine.engine_tree",
        "engine._pacing",
        "engine._failure_log",
        "engine._frame_report",
        "engine.metrics",
    ),
    "facade": ("engine.manager", "engine._facade_", "engine.debug"),
    "testing": ("engine.testing",),
    "cli": ("engine.cli", "engine._cli_engine", "engine.demo"),
}
ORDER = list(LAYERS)
#: Edges allowed against the order (none today).
LAYER_EXCEPTIONS: set[tuple[str, str]] = set()


def _layer(module: str) -> str | None:
    best: tuple[int, str] | None = None
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            # The longest prefix wins (engine._snap_book is core, engine._snap_ticket runtime).
            if module.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), layer)
    return None if best is None else best[1]


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
        if _layer(target) in ("routing", "transport", "runtime", "facade", "cli")
    }
    assert not uses, f"the emulator imports the engine's own machinery: {sorted(uses)}"
