"""``syno-tvm synthesize``: distinct valid operators as JSON lines, written as it goes; bad input is one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from syno_tvm.cli import main
from syno_tvm.ir.graph import Operator
from syno_tvm.synth.spec import RESNET18_CIFAR_LAYERS, TRANSFORMER, Spec, layers_from_model


def test_synthesize_writes_distinct_valid_operators(tmp_path, capsys):
    out = tmp_path / "ops.jsonl"
    assert main(["synthesize", "--spec", "transformer", "--count", "4", "--seed", "3", "--out", str(out),
                 "--quiet"]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 4
    recs = [json.loads(line) for line in lines]
    assert len({r["fingerprint"] for r in recs}) == 4 and len({r["hash"] for r in recs}) == 4
    spec = Spec.from_json(TRANSFORMER)
    for r in recs:
        op = Operator.from_json(r["operator"])
        assert op.hash == r["hash"]
        assert set(r["flops"]) == set(r["params"]) == set(spec.layer_bindings)
        for name, b in spec.layer_bindings.items():
            assert op.params(b) == r["params"][name]
    assert "wrote 4 operators" in capsys.readouterr().out


def test_spec_file_and_errors(tmp_path):
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({**TRANSFORMER, "name": "mine", "depth": 4}))
    out = tmp_path / "o.jsonl"
    assert main(["synthesize", "--spec", str(spec_file), "--count", "2", "--out", str(out), "--quiet"]) == 0
    assert all(json.loads(x)["depth"] <= 4 for x in out.read_text().splitlines())
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for argv in (["--spec", str(bad)], ["--spec", "nope"], ["--count", "0"],
                 ["--out", str(tmp_path / "missing" / "x.jsonl")]):
        r = subprocess.run([sys.executable, "-m", "syno_tvm.cli", "synthesize", "--quiet", *argv],
                           capture_output=True, text=True, cwd=tmp_path)
        assert r.returncode == 2, (argv, r.stderr)
        assert not (tmp_path / "ops.jsonl").exists()  # a rejected run writes no file
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("syno-tvm: error: "), r.stderr


def test_depth_first_order_and_an_exhausted_space(tmp_path, capsys):
    """--order dfs writes semantically distinct operators too (deterministic: two runs agree line for line); asking a
    tiny space for more operators than it holds fails with one line after writing those it has."""
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({**TRANSFORMER, "name": "tiny", "depth": 3}))
    runs = []
    for k in range(2):
        out = tmp_path / f"dfs{k}.jsonl"
        assert main(["synthesize", "--spec", str(spec_file), "--order", "dfs", "--count", "3", "--out", str(out),
                     "--quiet"]) == 0
        runs.append(out.read_text())
    recs = [json.loads(line) for line in runs[0].splitlines()]
    assert runs[0] == runs[1] and len({r["fingerprint"] for r in recs}) == 3
    capsys.readouterr()
    out = tmp_path / "all.jsonl"
    assert main(["synthesize", "--spec", str(spec_file), "--order", "dfs", "--count", "1000", "--out", str(out),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds only" in err, err
    held = int(err.split("holds only ")[1].split()[0])
    assert 3 <= held == len(out.read_text().splitlines())


@pytest.mark.slow
def test_vision_layers_come_from_the_resnet18_model():
    from syno_tvm.synth.spec import VISION

    assert layers_from_model(Spec.from_json(VISION), "builtin:resnet18-cifar") == RESNET18_CIFAR_LAYERS


def test_transformer_layers_come_from_the_transformer_block():
    assert layers_from_model(Spec.from_json(TRANSFORMER), "builtin:transformer-block") == {
        "matmul_0": {"N": 1, "seq": 16, "H_in": 96}}
