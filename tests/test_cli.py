"""The ``syno-tvm`` command line: in-process through ``main(argv)`` (capsys), and once as a real subprocess.

User errors must exit 2 with exactly one stderr line ``syno-tvm: error: ...`` and no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from syno_tvm.cli import main
from syno_tvm.ir.library import LIBRARY, named

REPO = Path(__file__).resolve().parent.parent
HAVE_DOT = (REPO / "syno_tvm" / "report" / "dot.py").exists()


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code: int, err: str, *must_contain: str) -> str:
    lines = err.splitlines()
    assert code == 2, f"exit code {code}, stderr {err!r}"
    assert len(lines) == 1, f"expected exactly one stderr line, got {lines!r}"
    assert lines[0].startswith("syno-tvm: error:"), lines[0]
    assert "Traceback" not in err
    for text in must_contain:
        assert text in lines[0], f"{text!r} not in {lines[0]!r}"
    return lines[0]


def bind_arg(name: str) -> str:
    return ",".join(f"{k}={v}" for k, v in LIBRARY[name].example.items())


# ---- success paths ----------------------------------------------------------------------------------------------

def test_show_conv2d_verify(capsys):
    code, out, err = run(capsys, "show", "conv2d", "--verify")
    assert code == 0, out + err
    assert "OK" in out and "FAILED" not in out
    assert named("conv2d").hash in out
    assert err == ""


def test_show_conv2d_verify_as_subprocess():
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "syno_tvm.cli", "show", "conv2d", "--verify"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_subprocess_user_error_is_one_line():
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "syno_tvm.cli", "show", "no_such_operator"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert_user_error(proc.returncode, proc.stderr, "no_such_operator")


def test_list_names_every_operator(capsys):
    code, out, err = run(capsys, "list")
    assert code == 0 and err == ""
    listed = [line.split()[0] for line in out.splitlines() if line.strip()]
    assert listed == list(LIBRARY)


@pytest.mark.parametrize("name", list(LIBRARY))
def test_show_every_named_operator(capsys, name):
    code, out, err = run(capsys, "show", name)
    assert code == 0, out + err
    assert err == ""
    op = named(name)
    assert out.startswith(name) and op.hash in out
    assert "FLOPs" in out and "TE (" in out
    assert "Y[" in out


def test_json_file_round_trip(capsys, tmp_path):
    f = tmp_path / "op.json"
    code, out, err = run(capsys, "show", "conv2d", "--json", str(f))
    assert code == 0, out + err
    data = json.loads(f.read_text())
    assert data["format"] == "syno-tvm/operator" and data["name"] == "conv2d"
    code, out, err = run(capsys, "show", str(f), "--bind", bind_arg("conv2d"), "--verify")
    assert code == 0, out + err
    assert "OK" in out and named("conv2d").hash in out
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary file left behind"


def test_json_round_trip_keeps_hash_for_every_operator(capsys, tmp_path):
    for name in LIBRARY:
        f = tmp_path / f"{name}.json"
        assert run(capsys, "show", name, "--json", str(f))[0] == 0
        code, out, err = run(capsys, "show", str(f), "--bind", bind_arg(name))
        assert code == 0, out + err
        assert named(name).hash in out


def test_inline_json(capsys):
    code, out, err = run(capsys, "show", named("pointwise").dumps(), "--bind", bind_arg("pointwise"))
    assert code == 0, out + err
    assert named("pointwise").hash in out


def test_dot_file(capsys, tmp_path):
    if not HAVE_DOT:
        pytest.fail("syno_tvm/report/dot.py does not exist yet: --dot cannot work")
    f = tmp_path / "op.dot"
    code, out, err = run(capsys, "show", "conv2d", "--dot", str(f))
    assert code == 0, out + err
    assert f.read_text().lstrip().startswith("digraph")


# ---- user errors: exit 2, one line on stderr, no traceback ------------------------------------------------------

def test_unknown_operator_name(capsys):
    line = assert_user_error(*run(capsys, "show", "conv3d")[::2], "conv3d")
    assert "conv2d" in line  # lists the known operators


def test_missing_json_file(capsys, tmp_path):
    f = tmp_path / "absent.json"
    assert_user_error(*run(capsys, "show", str(f))[::2], "absent.json")


def test_malformed_json_text(capsys, tmp_path):
    f = tmp_path / "bad.json"
    f.write_text('{"format": "syno-tvm/operator", "version": 1, "sizes": [')
    assert_user_error(*run(capsys, "show", str(f))[::2], "JSON")


def _conv2d_json() -> dict:
    return named("conv2d").to_json()


def test_json_unknown_primitive_kind(capsys, tmp_path):
    data = _conv2d_json()
    data["prims"][0][0] = "transpose"
    f = tmp_path / "kind.json"
    f.write_text(json.dumps(data))
    assert_user_error(*run(capsys, "show", str(f), "--bind", bind_arg("conv2d"))[::2], "transpose")


def test_json_split_of_wrong_arity(capsys, tmp_path):
    data = named("conv2d_grouped").to_json()
    splits = [p for p in data["prims"] if p[0] == "split"]
    assert splits
    splits[0][2] = splits[0][2][:1]  # one bottom dim instead of two
    f = tmp_path / "arity.json"
    f.write_text(json.dumps(data))
    assert_user_error(*run(capsys, "show", str(f), "--bind", bind_arg("conv2d_grouped"))[::2], "split")


def test_json_not_an_operator(capsys, tmp_path):
    f = tmp_path / "list.json"
    f.write_text("[1, 2, 3]")
    assert_user_error(*run(capsys, "show", str(f))[::2])
    f.write_text(json.dumps(dict(_conv2d_json(), version=99)))
    assert_user_error(*run(capsys, "show", str(f))[::2], "version")
    data = _conv2d_json()
    del data["output"]
    f.write_text(json.dumps(data))
    assert_user_error(*run(capsys, "show", str(f))[::2])


def test_bind_that_does_not_divide(capsys):
    line = assert_user_error(*run(capsys, "show", "conv2d_grouped", "--bind", "C_in=8")[::2], "C_in/g")
    assert "C_in=8" in line and "g=32" in line


@pytest.mark.parametrize("bind", ["H=0", "garbage", "H=-1", "H=two"])
def test_bad_bind_syntax(capsys, bind):
    assert_user_error(*run(capsys, "show", "conv2d", "--bind", bind)[::2], bind)


def test_missing_variable_for_json_operator(capsys, tmp_path):
    f = tmp_path / "conv.json"
    assert run(capsys, "show", "conv2d", "--json", str(f))[0] == 0
    line = assert_user_error(*run(capsys, "show", str(f))[::2], "--bind")
    assert any(f"'{v}'" in line for v in named("conv2d").primary_variables()), line


def test_json_into_missing_directory(capsys, tmp_path):
    target = tmp_path / "nope" / "op.json"
    assert_user_error(*run(capsys, "show", "conv2d", "--json", str(target))[::2], "nope")
    assert not target.exists() and not target.parent.exists()


# ---- named operators with coefficients keep their example binding; --bind overrides single keys ---------------

def test_coefficients_keep_the_example_binding(capsys):
    code, out, err = run(capsys, "show", "conv2d_grouped:g=4")
    assert code == 0, out + err
    binding = next(line for line in out.splitlines() if line.startswith("binding:"))
    example = LIBRARY["conv2d_grouped"].example
    assert f"C_in={example['C_in']}" in binding and "g=4" in binding, binding


def test_bind_overrides_one_key_of_the_example(capsys):
    code, out, err = run(capsys, "show", "conv2d_grouped:g=4", "--bind", "H=7")
    assert code == 0, out + err
    binding = next(line for line in out.splitlines() if line.startswith("binding:"))
    assert "H=7" in binding and f"W={LIBRARY['conv2d_grouped'].example['W']}" in binding, binding


def test_coefficient_that_breaks_the_example_says_so(capsys):
    line = assert_user_error(*run(capsys, "show", "conv2d_grouped:g=3")[::2], "example binding", "g=3", "--bind")
    assert "C_in/g" in line or "C_out/g" in line
    code, out, err = run(capsys, "show", "conv2d_grouped:g=3", "--bind", "C_in=6,C_out=9")
    assert code == 0, out + err


def test_bad_bind_value_blames_the_bind_not_the_example(capsys):
    line = assert_user_error(*run(capsys, "show", "conv2d_grouped:g=4", "--bind", "C_in=6")[::2], "C_in=6")
    assert "example binding" not in line


def test_every_subcommand_help_ends_with_an_example_that_parses(capsys):
    import shlex

    from syno_tvm.cli import EXAMPLES, parser

    for name, example in EXAMPLES.items():
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert f"example:\n  {example}" in capsys.readouterr().out
        args = parser().parse_args(shlex.split(example)[1:])
        assert args.command == name


def test_optimize_takes_the_model_as_an_option_too(capsys, tmp_path):
    from syno_tvm.cli import parser

    args = parser().parse_args(["optimize", "--model", "builtin:small-cnn", "--operator", "conv2d", "--out", "o"])
    assert args.model is None and args.model_option == "builtin:small-cnn"
    assert main(["optimize", "--operator", "conv2d", "--out", str(tmp_path / "o")]) == 2
    assert "give the model once" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
