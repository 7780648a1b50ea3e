"""Check the package's layout: import rules between its parts, no import cycle, small modules.

The rules are data, in `[tool.giellm-batch.layout]` of the pyproject.toml next to the package's
folder (the repository root):

  imports                  each subpackage or top-level module ("__init__" for the package's own
                           __init__) -> the other subpackages / top-level modules it may import
  max_module_lines         no module longer than this
  max_top_level_modules    no more .py files than this directly in the package folder (__init__ counts)

Every `import` / `from ... import` counts, including the ones inside functions (a lazy import
hides a dependency from Python's import machinery, not from a reader). A subpackage's `__init__`
is the subpackage. Each violation is one line starting with file:line. Exit 1 on any violation,
2 when the rules cannot be read, 0 otherwise. `--graph` first prints which parts import which.

Usage: python scripts/check_layout.py [--graph] [PACKAGE_DIR]
"""

from __future__ import annotations

import argparse
import ast
import itertools
import sys
import tomllib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

TABLE = "[tool.giellm-batch.layout]"
PACKAGE_INIT = "__init__"  # the rule key of the package's own __init__.py


class LayoutError(Exception):
    """The rules themselves are missing or malformed."""


@dataclass(frozen=True)
class Layout:
    imports: dict[str, list[str]]
    max_module_lines: int
    max_top_level_modules: int


@dataclass
class Module:
    name: str
    path: Path
    shown: str  # the path as printed: relative to the package's parent
    line_count: int
    # one entry per import statement: its line and the package's modules it names
    statements: list[tuple[int, list[str]]] = field(default_factory=list)


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def statement_targets(node: ast.AST, name: str, is_package: bool, known: set[str]) -> list[str]:
    """The package's modules one import statement names (each narrowed to the longest known prefix)."""
    targets: list[str] = []
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = name.split(".") if is_package else name.split(".")[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
    found: list[str] = []
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name and target not in found:
            found.append(target)
    return found


def read_modules(root: Path) -> dict[str, Module]:
    files = sorted(root.rglob("*.py"))
    known = {module_name(root, f) for f in files}
    modules: dict[str, Module] = {}
    for path in files:
        name = module_name(root, path)
        text = path.read_text(encoding="utf-8")
        module = Module(name, path, path.relative_to(root.parent).as_posix(), len(text.splitlines()))
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                targets = statement_targets(node, name, path.name == "__init__.py", known)
                if targets:
                    module.statements.append((node.lineno, targets))
        module.statements.sort(key=lambda statement: statement[0])
        modules[name] = module
    return modules


def package_graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    """Module -> the modules it imports; a subpackage's own __init__ imported by its modules is left out."""
    graph: dict[str, set[str]] = {}
    for name, module in modules.items():
        targets = {t for _, found in module.statements for t in found}
        graph[name] = {t for t in targets if not name.startswith(t + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def shortest_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest cycle through the component's first member, staying inside the component."""
    start, members = component[0], set(component)
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph[node] & members):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start}")  # unreachable for a strongly connected component


def part_of(package: str, module: str) -> str:
    """The rule key a module falls under: its subpackage, or the top-level module itself."""
    return PACKAGE_INIT if module == package else module[len(package) + 1 :].split(".")[0]


def load_layout(pyproject: Path) -> Layout:
    if not pyproject.is_file():
        raise LayoutError(f"{pyproject}: not found; the layout rules live in its {TABLE} table")
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise LayoutError(f"{pyproject}: {error}") from error
    table = data.get("tool", {}).get("giellm-batch", {}).get("layout")
    if not isinstance(table, dict):
        raise LayoutError(f"{pyproject}: no {TABLE} table")
    imports = table.get("imports")
    if not isinstance(imports, dict) or not all(
        isinstance(allowed, list) and all(isinstance(item, str) for item in allowed) for allowed in imports.values()
    ):
        raise LayoutError(f"{pyproject}: {TABLE} imports must map each part to a list of part names")
    limits = {}
    for key in ("max_module_lines", "max_top_level_modules"):
        value = table.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise LayoutError(f"{pyproject}: {TABLE} {key} must be a positive integer, not {value!r}")
        limits[key] = value
    return Layout(imports, limits["max_module_lines"], limits["max_top_level_modules"])


def allowed_text(layout: Layout, part: str) -> str:
    return "[" + ", ".join(f'"{name}"' for name in layout.imports[part]) + "]"


def rule_violations(layout: Layout, pyproject: str) -> list[str]:
    """The table itself: every name it allows has its own entry, and the allowed imports form no cycle."""
    out = []
    for part, allowed in sorted(layout.imports.items()):
        for name in allowed:
            if name not in layout.imports:
                out.append(
                    f"{pyproject}: imports.{part} allows {name!r}, which has no entry of its own in {TABLE} imports"
                )
    allowed_graph = {
        part: {name for name in allowed if name != part and name in layout.imports}
        for part, allowed in layout.imports.items()
    }
    for component in cycles(allowed_graph):
        loop = " -> ".join(shortest_cycle(allowed_graph, component))
        out.append(f"{pyproject}: {TABLE} imports allow a cycle: {loop}")
    return out


def import_violations(package: str, modules: dict[str, Module], layout: Layout) -> list[str]:
    out = []
    reported_parts: set[str] = set()
    for module in sorted(modules.values(), key=lambda m: m.shown):
        part = part_of(package, module.name)
        if part not in layout.imports:
            if part not in reported_parts:
                reported_parts.add(part)
                out.append(
                    f"{module.shown}:1: {module.name} belongs to {part!r}, which has no entry in {TABLE} imports "
                    f"(entries: {', '.join(sorted(layout.imports))})"
                )
            continue
        for line, targets in module.statements:
            # `from pkg.sub import mod` names pkg.sub and pkg.sub.mod: the rule is about the module
            narrowest = [t for t in targets if not any(o.startswith(t + ".") for o in targets)]
            for target in narrowest:
                if module.name.startswith(target + "."):
                    continue  # an ancestor package's __init__: always imported anyway
                imported = part_of(package, target)
                if imported == part or imported in layout.imports[part]:
                    continue
                out.append(
                    f"{module.shown}:{line}: {module.name} imports {target} ({imported!r}), but imports.{part} "
                    f"allows only {allowed_text(layout, part)}"
                )
    return out


def cycle_violations(modules: dict[str, Module]) -> list[str]:
    graph = package_graph(modules)
    out = []
    for component in cycles(graph):
        loop = shortest_cycle(graph, component)
        edges = []
        for source, target in itertools.pairwise(loop):
            module = modules[source]
            line = min(line for line, targets in module.statements if target in targets)
            edges.append((module.shown, line, source, target))
        where = "; ".join(f"{source} imports {target} at {shown}:{line}" for shown, line, source, target in edges)
        out.append(f"{edges[0][0]}:{edges[0][1]}: import cycle {' -> '.join(loop)} ({where}); no cycle is allowed")
    return out


def size_violations(root: Path, modules: dict[str, Module], layout: Layout) -> list[str]:
    out = []
    top = sorted(path.stem for path in root.glob("*.py"))
    if len(top) > layout.max_top_level_modules:
        out.append(
            f"{root.name}/: {len(top)} modules at the top of the package ({', '.join(top)}), "
            f"over max_top_level_modules = {layout.max_top_level_modules}; move some into a subpackage"
        )
    for module in sorted(modules.values(), key=lambda m: m.shown):
        if module.line_count > layout.max_module_lines:
            out.append(
                f"{module.shown}:{layout.max_module_lines + 1}: {module.name} has {module.line_count} lines, "
                f"over max_module_lines = {layout.max_module_lines}; split it"
            )
    return out


def part_graph(package: str, modules: dict[str, Module]) -> dict[str, set[str]]:
    """Subpackage / top-level module -> the others it imports, as the code stands."""
    graph: dict[str, set[str]] = {}
    for name, targets in package_graph(modules).items():
        part = part_of(package, name)
        graph.setdefault(part, set()).update(part_of(package, t) for t in targets)
        graph[part].discard(part)
    return graph


def print_graph(package: str, modules: dict[str, Module], layout: Layout) -> None:
    print(f"# {package}: part -> parts it imports (* = not allowed by {TABLE} imports)")
    for part, imported in sorted(part_graph(package, modules).items()):
        allowed = layout.imports.get(part, [])
        shown = [f"{name}{'' if name in allowed else '*'}" for name in sorted(imported)]
        print(f"{part} -> {', '.join(shown) if shown else '(nothing)'}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("package", nargs="?", default=str(Path(__file__).resolve().parents[1] / "giellm_batch"))
    parser.add_argument("--graph", action="store_true", help="print which parts import which, then check")
    args = parser.parse_args(argv[1:])
    root = Path(args.package).resolve()
    if not (root / "__init__.py").is_file():
        print(f"{args.package}: not a package (no __init__.py)")
        return 2
    pyproject = root.parent / "pyproject.toml"
    try:
        layout = load_layout(pyproject)
    except LayoutError as error:
        print(error)
        return 2
    modules = read_modules(root)
    if args.graph:
        print_graph(root.name, modules, layout)
    found = [
        *rule_violations(layout, pyproject.name),
        *size_violations(root, modules, layout),
        *import_violations(root.name, modules, layout),
        *cycle_violations(modules),
    ]
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
