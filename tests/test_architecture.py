"""The package's layering, checked on its source with ``ast``: no import circle inside ``syno_tvm/`` (imports inside
functions count: a lazy import is still a dependency), and no ``_``-prefixed name imported from another module or
read off another object (``x._name`` where ``x`` is not ``self``/``cls``): a private name is the owner's to change."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "syno_tvm"


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom names (relative levels resolved against ``module``)."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports(known: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the package modules it imports (``from pkg import sub`` counts as importing ``pkg.sub``)."""
    graph: dict[str, set[str]] = {m: set() for m in known}
    for module, path in known.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                graph[module] |= {a.name for a in node.names if a.name in known}
            elif isinstance(node, ast.ImportFrom):
                target = resolve(module, path, node)
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    if sub in known:
                        graph[module].add(sub)
                    elif target in known:
                        graph[module].add(target)
        graph[module].discard(module)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


# The compiled extension is private to the package; its one importer wraps it for everyone else.
PRIVATE_IMPORTS_ALLOWED = {("syno_tvm.synth.engine", "_synth_native")}


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def defined(tree: ast.AST) -> set[str]:
    """The private names a module defines itself (functions, classes, assigned names and attributes): reading
    ``other._wrap`` where ``_wrap`` is this module's own method is not reaching into another module."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            out.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out.add(node.target.id)
    return {n for n in out if private(n)}


def private_uses(known: dict[str, Path]) -> list[str]:
    out = []
    for module, path in known.items():
        tree = ast.parse(path.read_text())
        own = defined(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                out += [f"{module}:{node.lineno} imports {a.name}" for a in node.names
                        if private(a.name) and (module, a.name) not in PRIVATE_IMPORTS_ALLOWED]
            elif isinstance(node, ast.Import):
                out += [f"{module}:{node.lineno} imports {a.name}" for a in node.names
                        if any(private(p) for p in a.name.split("."))]
            elif isinstance(node, ast.Attribute) and private(node.attr) and node.attr not in own:
                out.append(f"{module}:{node.lineno} uses {ast.unparse(node)}")
    return out


def test_the_checks_can_fail():
    """The walkers see a circle and a private use when there is one (on a made-up graph and source)."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.py"
        path.write_text("from .x import _y\nz = space._allowance_ok\nw = self._own\nself._own = 1\n")
        assert private_uses({"m": path}) == ["m:1 imports _y", "m:2 uses space._allowance_ok"]


def test_no_import_circle():
    found = cycles(imports(modules()))
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_private_name_across_modules():
    found = private_uses(modules())
    assert not found, "private names used across modules:\n" + "\n".join(found)
