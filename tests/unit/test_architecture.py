"""The package's import graph: no circles, lazy and type-checking imports included.

Every ``import`` statement of every module counts, wherever it stands (inside a
function or an ``if TYPE_CHECKING:`` block too), because a circle there is a
circle a reader has to untangle all the same.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "flask_mcp_auth"
NAME = "flask_mcp_auth"


def module_name(path: Path) -> str:
    parts = [NAME, *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The package modules ``path`` imports (a ``from pkg import name`` naming a module
    counts as importing that module)."""
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                # 'from pkg import module' imports the module; 'from pkg import name', pkg.
                found.add(submodule if submodule in modules else target)
    return {name for name in found if name in modules and name != own}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in paths}
    return {module_name(path): imports_of(path, modules) for path in paths}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read_from_real_imports() -> None:
    graph = import_graph()
    assert f"{NAME}.extension" in graph
    assert f"{NAME}.state" in graph[f"{NAME}.extension"]
    assert f"{NAME}.errors" in graph[f"{NAME}.keys.schema"]


def test_the_import_graph_has_no_circles() -> None:
    assert circles(import_graph()) == []


def test_the_detector_finds_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_nothing_below_the_extension_imports_it() -> None:
    graph = import_graph()
    importers = sorted(name for name, targets in graph.items() if f"{NAME}.extension" in targets)
    assert importers == [NAME]


def test_leaf_modules_import_nothing_of_the_package() -> None:
    graph = import_graph()
    for leaf in ("_time", "_version", "roles", "credentials", "keys.signing"):
        assert graph[f"{NAME}.{leaf}"] == set(), leaf


#: The layers of docs/architecture.md, lowest first. A module may import its own layer
#: and the layers below; a new module must be placed here (and in the doc).
LAYERS: list[set[str]] = [
    {
        "_version",
        "_time",
        "_forksafe",
        "roles",
        "credentials",
        "keys.signing",
        "logs",
        "audit_output",
        "debug",
        "keys",
    }
    | {"oauth", "oauth.urls", "oauth.cimd", "oauth.marks"},
    {"keys.model", "principal", "oauth.tokens", "oauth.clients"},
    {"context", "errors"},
    {
        "keys.schema",
        "keys.store",
        "keys.source",
        "keys.verified",
        "ratelimit",
        "ratelimit.limits",
        "ratelimit.counters",
        "ratelimit.memory_counter",
        "ratelimit.redis_counters",
        "ratelimit.responses",
        "ratelimit.storage",
        "ratelimit.limiter",
        "config",
        "redaction",
        "oauth.verifier",
    },
    {"resolve", "authorization", "decorators", "discovery", "audit"}
    | {"oauth.server", "oauth.metadata", "oauth.registration", "oauth.signin", "oauth.setup"},
    {"state"},
    {"guard", "status", "checks", "cli", "cli.loading", "cli.check", "cli.generate_key"}
    | {"cli.list_keys", "oauth.blueprint"},
    {"extension", ""},
]


def layer_of(module: str) -> int:
    short = module.removeprefix(NAME).removeprefix(".")
    for number, members in enumerate(LAYERS):
        if short in members:
            return number
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")


def test_every_import_points_down_the_layers() -> None:
    upward = [
        f"{importer} -> {target}"
        for importer, targets in import_graph().items()
        for target in targets
        if layer_of(target) > layer_of(importer)
    ]
    assert upward == []


def test_the_architecture_page_names_every_module() -> None:
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for members in LAYERS:
        for short in members - {"", "keys"}:
            assert f"`{short.replace('.', '/')}" in page, short
