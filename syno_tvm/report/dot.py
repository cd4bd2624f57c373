"""A graphviz DOT picture of an operator's primitive graph, as plain text (no graphviz package needed).

Layout, top to bottom in the direction of forward data flow:

* the tensors ``X``, ``W1``.. are boxes on the top rank, labelled with their dim sizes in order;
* one ellipse per primitive, labelled with its kind (``shift +1``, ``share W1`` carry the parameter);
* the output ``Y`` (a box) and the Reduce nodes (the sums) sit on the bottom rank.

Each dim is exactly one edge, from the node above it (the tensor that holds it, or the primitive whose bottom it
is) to the node below it (``Y``, or the primitive whose top it is), labelled with its symbolic size and carrying
``id="dimN"``.  For a primitive with two tops or two bottoms, the left branch (index 0) attaches on the west side
and the right branch on the east side, so Split/Merge/Unfold/Share read left to right as in the rule table.

Render with ``dot -Tsvg op.dot -o op.svg``.
"""

from __future__ import annotations

from ..ir.graph import Operator

_SIDE = {1: ("",), 2: ("w", "e")}


def _q(text: str) -> str:
    """A DOT double-quoted string."""
    return _label(text)


def _label(*lines: str) -> str:
    """A DOT double-quoted string of ``lines`` joined by DOT's centred line break."""
    return '"' + "\\n".join(line.replace("\\", "\\\\").replace('"', '\\"') for line in lines) + '"'


def _tensor_label(name: str, dims: tuple[int, ...], sizes: list[str]) -> str:
    return _label(name, "[" + ", ".join(sizes[d] for d in dims) + "]")


def _prim_label(kind: str, param: int) -> str:
    if kind == "shift":
        return f"shift {param:+d}"
    if kind == "share":
        return f"share W{param}"
    return kind


def to_dot(op: Operator) -> str:
    """The DOT text of ``op``'s primitive graph (see the module docstring for the layout)."""
    sizes = [str(s) for s in op.sizes]
    title = op.name or "operator"
    if op.coefficients:
        title += " (" + ", ".join(f"{k}={v}" for k, v in op.coefficients) + ")"

    lines = [
        f"digraph {_q(op.name or 'operator')} {{",
        f"  graph [label={_q(title)}, labelloc=t, rankdir=TB, fontname=Helvetica];",
        '  node [fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    tensor_names = ["X"] + [f"W{t}" for t in range(1, len(op.weights) + 1)]
    for name, dims in zip(tensor_names, op.tensors):
        lines.append(f"  {name} [shape=box, style=bold, label={_tensor_label(name, dims, sizes)}];")
    lines.append(f"  Y [shape=box, style=bold, label={_tensor_label('Y', op.output, sizes)}];")
    for i, p in enumerate(op.prims):
        shape = "invtriangle" if p.kind == "reduce" else "ellipse"
        lines.append(f"  p{i} [shape={shape}, label={_q(_prim_label(p.kind, p.param))}];")
    reduces = [f"p{i}" for i, p in enumerate(op.prims) if p.kind == "reduce"]
    lines.append("  { rank=source; " + " ".join(f"{n};" for n in tensor_names) + " }")
    lines.append("  { rank=sink; Y; " + " ".join(f"{n};" for n in reduces) + " }")

    # Each dim: from the node above (tensor, or primitive with it as a bottom) to the node below (Y, or primitive
    # with it as a top).  Ports: tensor dims leave from the south, Y's dims arrive at the north.
    above: dict[int, tuple[str, str]] = {}
    below: dict[int, tuple[str, str]] = {}
    for name, dims in zip(tensor_names, op.tensors):
        for d in dims:
            above[d] = (name, "s")
    for d in op.output:
        below[d] = ("Y", "n")
    for i, p in enumerate(op.prims):
        for k, d in enumerate(p.bottoms):
            above[d] = (f"p{i}", "s" + _SIDE[len(p.bottoms)][k])
        for k, d in enumerate(p.tops):
            below[d] = (f"p{i}", "n" + _SIDE[len(p.tops)][k])
    for d in range(len(sizes)):
        (src, tail), (dst, head) = above[d], below[d]
        lines.append(f"  {src} -> {dst} [id=\"dim{d}\", label={_q(sizes[d])}, tailport={tail}, headport={head}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
