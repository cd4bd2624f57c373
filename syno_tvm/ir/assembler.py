"""Forward construction of operators (input -> output), the way a person writes one down.

Synthesis builds operators bottom-up from the output; people think top-down from the input.  The Assembler lets
them, and produces the same :class:`~syno_tvm.ir.graph.Operator`.  Each call consumes *live* dims and returns new
ones; :meth:`Assembler.build` checks that exactly the output dims are left live::

    a = Assembler(k=3)
    n, c, h, w = a.input("N", "C_in", "H", "W")
    h, kh = a.unfold(h, "k")
    ...
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SynoError
from .graph import Operator, Prim
from .sizes import Size


@dataclass(frozen=True)
class DimRef:
    """A handle on one dim of the operator being assembled."""

    id: int
    size: Size


class Assembler:
    def __init__(self, **coefficients: int) -> None:
        self.coefficients = dict(coefficients)
        self.sizes: list[Size] = []
        self.prims: list[Prim] = []
        self.inputs: list[int] = []
        self.weight_dims: dict[int, list[int]] = {}
        self.live: set[int] = set()

    # ---- helpers ------------------------------------------------------------------------------------------------
    def _new(self, size: Size | str | int) -> DimRef:
        size = Size.parse(size)
        self.sizes.append(size)
        ref = DimRef(len(self.sizes) - 1, size)
        self.live.add(ref.id)
        return ref

    def _use(self, *dims: DimRef) -> None:
        for d in dims:
            if d.id not in self.live:
                raise SynoError(f"dim {d.id} (size {d.size}) is already used: each dim feeds exactly one primitive")
            self.live.remove(d.id)

    # ---- primitives (forward names) -----------------------------------------------------------------------------
    def input(self, *sizes: Size | str | int) -> list[DimRef]:
        if self.inputs:
            raise SynoError("the input tensor is already declared: an operator has one input")
        dims = [self._new(s) for s in sizes]
        self.inputs = [d.id for d in dims]
        return dims

    def split(self, d: DimRef, block: Size | str | int) -> tuple[DimRef, DimRef]:
        """``[A*B] -> [A, B]`` with ``B = block``: ``in[i*B + j] <- out[i, j]``."""
        block = Size.parse(block)
        self._use(d)
        major, minor = self._new(d.size / block), self._new(block)
        self.prims.append(Prim("split", (d.id,), (major.id, minor.id)))
        return major, minor

    def merge(self, a: DimRef, b: DimRef) -> DimRef:
        """``[A, B] -> [A*B]``: ``in[k // B, k % B] <- out[k]``."""
        self._use(a, b)
        k = self._new(a.size * b.size)
        self.prims.append(Prim("merge", (a.id, b.id), (k.id,)))
        return k

    def shift(self, d: DimRef, amount: int = 1) -> DimRef:
        """``in[(i + amount) mod N] <- out[i]``."""
        self._use(d)
        out = self._new(d.size)
        self.prims.append(Prim("shift", (d.id,), (out.id,), amount))
        return out

    def stride(self, d: DimRef, step: Size | str | int) -> DimRef:
        """``[s*N] -> [N]``: ``in[i*s] <- out[i]``."""
        self._use(d)
        out = self._new(d.size / Size.parse(step))
        self.prims.append(Prim("stride", (d.id,), (out.id,)))
        return out

    def unfold(self, d: DimRef, window: Size | str | int) -> tuple[DimRef, DimRef]:
        """``[N] -> [N, K]``: ``in[i + j - K//2] <- out[i, j]``, zero outside ``[0, N)``."""
        self._use(d)
        main, win = self._new(d.size), self._new(window)
        self.prims.append(Prim("unfold", (d.id,), (main.id, win.id)))
        return main, win

    def expand(self, size: Size | str | int) -> DimRef:
        """A dim with no input source (broadcast); with a Share it becomes an outer-product dim of a weight."""
        out = self._new(size)
        self.prims.append(Prim("expand", (), (out.id,)))
        return out

    def share(self, d: DimRef, weight: int) -> DimRef:
        """Multiply by weight tensor ``weight`` (1-based) along this dim; the weight gets a dim of the same size."""
        if weight < 1:
            raise SynoError(f"weights are numbered from 1, got {weight}")
        self._use(d)
        w = DimRef(len(self.sizes), d.size)
        self.sizes.append(d.size)
        out = self._new(d.size)
        self.weight_dims.setdefault(weight, []).append(w.id)
        self.prims.append(Prim("share", (d.id, w.id), (out.id,), weight))
        return out

    def sum(self, *dims: DimRef) -> None:
        """Reduce: sum over these dims."""
        for d in dims:
            self._use(d)
            self.prims.append(Prim("reduce", (d.id,), ()))

    # ---- result -------------------------------------------------------------------------------------------------
    def build(self, output: list[DimRef], name: str = "",
              weight_order: dict[int, list[int]] | None = None) -> Operator:
        """The operator with these output dims.  ``weight_order[t]`` permutes weight t's dims (default: the order of
        the Share calls), e.g. to match PyTorch's ``[C_out, C_in, k, k]`` layout."""
        left = self.live - {d.id for d in output}
        if left or len(set(d.id for d in output)) != len(output) or any(d.id not in self.live for d in output):
            raise SynoError(f"dims {sorted(left)} are neither output nor summed: end every dim in the output or a sum")
        n_weights = max(self.weight_dims, default=0)
        if sorted(self.weight_dims) != list(range(1, n_weights + 1)):
            raise SynoError(f"weights {sorted(self.weight_dims)} are not numbered 1..n: number them without gaps")
        weights = []
        for t in range(1, n_weights + 1):
            dims = self.weight_dims[t]
            if weight_order and t in weight_order:
                perm = weight_order[t]
                if sorted(perm) != list(range(len(dims))):
                    raise SynoError(f"weight_order[{t}] = {perm} is not a permutation of 0..{len(dims) - 1}")
                dims = [dims[i] for i in perm]
            weights.append(tuple(dims))
        return Operator(tuple(self.sizes), tuple(self.prims), tuple(self.inputs), tuple(weights),
                        tuple(d.id for d in output), tuple(sorted(self.coefficients.items())), name)
