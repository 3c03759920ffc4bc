"""``lossproof sweep`` on hostile input: one line on stderr, exit 2, never a traceback; and a good run writes its
row into the results file."""

from __future__ import annotations

import json

import pytest

from lossproof import sweep
from lossproof.cli import main


@pytest.mark.parametrize("argv,needle", [
    (["sweep", "tanh", "--format", "float16"], "unknown function"),
    (["sweep", "sigmoid", "--format", "float8"], "unknown format"),
    (["sweep", "sigmoid", "--format", "float16", "--subject", "mxnet"], "unknown subject"),
    (["sweep", "sigmoid", "--format", "bfloat16", "--subject", "numpy"], "numpy has no bfloat16"),
    (["sweep", "sigmoid", "--format", "float16", "--subject", "scipy"], "float16 in float32"),
    (["sweep", "sigmoid", "--format", "float16", "--range", "5"], "expected LO:HI"),
    (["sweep", "sigmoid", "--format", "float16", "--range", "10:5"], "0 <= LO < HI"),
    (["sweep", "sigmoid", "--format", "float16", "--range", "0:65537"], "0 <= LO < HI <= 65536"),
    (["sweep", "sigmoid", "--format", "float16", "--range", "a:b"], "not an integer"),
    (["sweep", "sigmoid", "--format", "float16", "--range", "1:2:3"], "expected LO:HI"),
    (["sweep", "sigmoid", "--format", "float32", "--chunk", "0"], "--chunk must be positive"),
    (["sweep", "sigmoid", "--format", "float32", "--workers", "-1"], "--workers must be positive"),
    (["sweep", "sigmoid", "--format", "float32", "--workers", "two"], "not an integer"),
    (["sweep", "sigmoid"], "--format"),
    (["sweep", "softplus", "--format", "float32", "--subject", "scipy"], "SciPy has no softplus"),
])
def test_bad_input_is_one_line_and_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_float32_without_dask_says_so(monkeypatch, capsys):
    monkeypatch.setattr(sweep, "dask_available", lambda: "the float32 sweep runs on Dask, which is not installed")
    assert main(["sweep", "sigmoid", "--format", "float32", "--range", "0:16"]) == 2
    err = capsys.readouterr().err
    assert "not installed" in err and err.count("\n") == 1


def test_results_that_are_not_results(tmp_path, capsys):
    bad = tmp_path / "r.json"
    bad.write_text('{"schema": "something else"}')
    assert main(["sweep", "sigmoid", "--format", "float16", "--range", "0:16", "--results", str(bad)]) == 2
    assert "not a lossproof results file" in capsys.readouterr().err
    folder = tmp_path / "d"
    folder.mkdir()
    assert main(["sweep", "sigmoid", "--format", "float16", "--range", "0:16", "--results", str(folder)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_run_writes_its_row(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["sweep", "logsigmoid", "--format", "bfloat16", "--subject", "numpy", "--results", str(out)]) == 2
    capsys.readouterr()
    code = main(["sweep", "logsigmoid", "--format", "float16", "--subject", "numpy", "--results", str(out),
                 "--report", str(tmp_path / "r.html")])
    text = capsys.readouterr().out
    assert code == 0 and "max" in text and "ULP" in text
    doc = json.loads(out.read_text())
    (row,) = doc["sweeps"]
    assert row["function"] == "logsigmoid" and row["inputs"] == 65536 and row["verdict"] == "correctly_rounded"
    # a rerun replaces its row, not appends
    assert main(["sweep", "logsigmoid", "--format", "float16", "--subject", "numpy", "--results", str(out)]) == 0
    assert len(json.loads(out.read_text())["sweeps"]) == 1
    assert "Exhaustive sweeps" in (tmp_path / "r.html").read_text()
