"""The DOT picture of every library operator: well formed, one edge per dim, every primitive kind shown."""

import re
import shutil
import subprocess

import pytest

from syno_tvm.ir.library import LIBRARY
from syno_tvm.report.dot import to_dot

OPERATORS = {name: entry.build() for name, entry in LIBRARY.items()}
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_NODE = re.compile(r"^\s*(\w+) \[(.*)\];$")
_EDGE = re.compile(r"^\s*(\w+) -> (\w+) \[(.*)\];$")


def _unquote(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s[1:-1])


def _parse(text: str):
    """Nodes {name: label} and edges [(src, dst, attrs)] of the DOT text, after structural checks."""
    assert text.startswith("digraph ")
    bare = _QUOTED.sub('""', text)
    depth = 0
    for ch in bare:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0, "a closing brace without an opening one"
    assert depth == 0, "unbalanced braces"
    assert bare.rstrip().endswith("}")
    nodes, edges = {}, []
    for line in text.splitlines()[1:-1]:
        if m := _EDGE.match(line):
            attrs = dict((k, _unquote(v) if v.startswith('"') else v)
                         for k, v in re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\w+)', m.group(3)))
            edges.append((m.group(1), m.group(2), attrs))
        elif (m := _NODE.match(line)) and m.group(1) not in ("graph", "node", "edge"):
            label = re.search(r'label=("(?:[^"\\]|\\.)*")', m.group(2))
            nodes[m.group(1)] = _unquote(label.group(1)) if label else m.group(1)
    return nodes, edges


@pytest.mark.parametrize("name", OPERATORS)
def test_dot_structure(name):
    op = OPERATORS[name]
    nodes, edges = _parse(to_dot(op))
    assert {"X", "Y"} <= set(nodes)
    assert {f"W{t}" for t in range(1, len(op.weights) + 1)} <= set(nodes)
    assert len(edges) == len(op.sizes), "one edge per dim"
    assert sorted(a["id"] for _, _, a in edges) == sorted(f"dim{d}" for d in range(len(op.sizes)))
    for src, dst, attrs in edges:
        assert src in nodes and dst in nodes, f"edge {src} -> {dst} must join two declared nodes"
        d = int(attrs["id"][3:])
        assert attrs["label"] == str(op.sizes[d])
        assert src != "Y" and dst not in [f"W{t}" for t in range(1, len(op.weights) + 1)] + ["X"], \
            "edges run from the input side to the output side"
    for kind in {p.kind for p in op.prims}:
        assert any(label.startswith(kind) for label in nodes.values()), f"no node shows {kind}"
    # primitive nodes: one per primitive; reduces and Y have no outgoing edge, tensors and expands no incoming one
    assert sum(1 for n in nodes if n.startswith("p")) == len(op.prims)
    sources = {s for s, _, _ in edges}
    targets = {t for _, t, _ in edges}
    for i, p in enumerate(op.prims):
        assert (f"p{i}" in sources) == bool(p.bottoms)
        assert (f"p{i}" in targets) == bool(p.tops)


def test_dot_shows_parameters():
    text = to_dot(OPERATORS["shift_conv"])
    assert '"shift +1"' in text and '"share W1"' in text
    assert '"share W2"' in to_dot(OPERATORS["stacked_conv"])


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz `dot` is not installed")
@pytest.mark.parametrize("name", OPERATORS)
def test_dot_renders(name, tmp_path):
    src = tmp_path / f"{name}.dot"
    src.write_text(to_dot(OPERATORS[name]))
    out = tmp_path / f"{name}.svg"
    done = subprocess.run(["dot", "-Tsvg", str(src), "-o", str(out)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr and "Error" not in done.stderr, done.stderr
    assert out.read_text().lstrip().startswith("<?xml") and "<svg" in out.read_text()
