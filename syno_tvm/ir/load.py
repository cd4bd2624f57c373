"""Operators from what a user types: a library name, ``NAME:coef=value,...``, an operator JSON file or inline JSON.

Shared by the command line, the optimize flow and training, so it lives with the IR rather than in ``cli.py``.
Must not import from ``synth``, ``lower``, ``relax``, ``tune``, ``train`` or the CLI: it sits below all of them.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from ..errors import SynoError
from .graph import Operator
from .library import LIBRARY, named
from .sizes import Size, parse_binding


def load_operator(spec: str) -> tuple[Operator, dict[str, int]]:
    """A named operator (``NAME`` or ``NAME:coef=value,...`` to set its coefficients, e.g. ``conv2d_grouped:g=4``),
    a JSON file or inline JSON; with the library entry's example binding for named operators (coefficients set or
    not: a ``--bind`` then overrides single keys of it), an empty binding otherwise."""
    if spec in LIBRARY:
        return named(spec), dict(LIBRARY[spec].example)
    name, _, coefs = spec.partition(":")
    if name in LIBRARY and coefs:
        return with_coefficients(name, coefs), dict(LIBRARY[name].example)
    if spec.lstrip().startswith("{"):
        return Operator.from_json(spec), {}
    path = Path(spec)
    if path.suffix == ".json" or path.exists():
        if not path.is_file():
            raise SynoError(f"operator file '{spec}' does not exist: give a JSON file or one of {', '.join(LIBRARY)}")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise SynoError(f"cannot read operator file '{spec}': {e}") from None
        return Operator.from_json(text), {}
    raise SynoError(f"unknown operator '{spec}': use one of {', '.join(LIBRARY)} or a JSON file")


def with_coefficients(name: str, text: str) -> Operator:
    """``LIBRARY[name]`` built with the coefficients in ``text`` (``g=4,k=5``)."""
    allowed = list(inspect.signature(LIBRARY[name].build).parameters)
    if not allowed:
        raise SynoError(f"{name} has no coefficients: write just '{name}'")
    values = {}
    for item in text.split(","):
        key, eq, value = (part.strip() for part in item.partition("="))
        if not eq or key not in allowed or not value.isdigit() or int(value) < 1:
            form = ",".join(f"{a}=N" for a in allowed)
            raise SynoError(f"bad coefficient '{item}' for {name}: write {name}:{form} with positive integers")
        values[key] = int(value)
    return LIBRARY[name].build(**values)


def bound(op: Operator, example: dict[str, int], bind: str = "") -> dict[str, int]:
    """``example`` with the keys ``bind`` names (``C_in=8,H=8``) overridden, checked against ``op``'s sizes.  A
    coefficient can make a library example unfit (``conv2d_grouped:g=3`` with its C_in=64): then the one-line error
    says that the example does not fit and to give other values with ``--bind``."""
    given = parse_binding(bind)
    binding = {**example, **given}
    try:
        op.bind(binding)
    except SynoError:
        if not example or _fits(op, example):
            raise  # the values given with --bind are at fault: the size's own message says which
        full = op.binding(binding)
        size = next((s for s in op.sizes if not _fits_size(s, full)), "a Stride factor")
        coefs = ",".join(f"{k}={v}" for k, v in op.coefficients)
        shown = ",".join(f"{k}={v}" for k, v in example.items())
        raise SynoError(f"the example binding {shown} does not fit {op.name or 'the operator'} with {coefs} "
                        f"(size {size} is not a positive integer): give fitting values with --bind") from None
    return binding


def _fits(op: Operator, binding: dict[str, int]) -> bool:
    try:
        op.bind(binding)
    except SynoError:
        return False
    return True


def _fits_size(size: Size, binding: dict[str, int]) -> bool:
    try:
        size.value(binding)
    except SynoError:
        return False
    return True
