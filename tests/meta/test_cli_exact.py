"""`lossproof exact`: its output format, its hard cases, and its one-line rejection of bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from lossproof.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def fields(line):
    exact, hexval, rep = line.split("  ")
    return exact, float.fromhex(hexval) if hexval not in ("inf", "-inf", "nan") else float(hexval), rep


def test_cross_entropy_line_has_exact_hex_and_repr(capsys):
    code, out, err = run(capsys, "exact", "cross_entropy", "--format", "float32",
                         json.dumps({"input": [[0, 0, 10, 0]], "target": [2]}))
    assert code == 0 and err == ""
    (line,) = out.strip().splitlines()
    exact, y, rep = fields(line)
    assert exact.startswith("0.000136190514938253628491155228951791")
    assert len(exact.replace("0.000", "")) >= 30
    assert y == float(rep) == 0.0001361905160592869
    assert float.hex(y) == "0x1.1d9cba0000000p-13"


@pytest.mark.parametrize(
    "name,fmt,kwargs,want",
    [
        # subnormal result: sigmoid(-745.5) = 1.71e-324 is below half the smallest float64 subnormal
        ("sigmoid", "float64", {"input": -745.5}, [0.0]),
        # subnormal result in float16: softplus(-16) = 1.1254e-7 -> 2**-23 (1.19e-7) is the nearest
        ("softplus", "float16", {"input": -16.0}, [2.0**-23]),
        # overflow to inf: logsumexp of two float16 maxima is 65504 + log 2 -> 65504 (below the 65520 midpoint)
        ("logsumexp", "float16", {"input": [65504.0, 65504.0]}, [65504.0]),
        ("nll_loss", "float16", {"input": [[-65504.0], [-65504.0]], "target": [0, 0], "reduction": "sum"},
         [math.inf]),
        # an exact tie: -(1 + 2**-11) is the float16 midpoint between 1 and 1 + 2**-10 -> 1 (even)
        ("nll_loss", "float16", {"input": [["-0x1.002p+0"]], "target": [0]}, [1.0]),
        # label smoothing, weights and ignore_index together: torch's formula gives
        # (1 - 0.5) * log 2 + (0.5 / 2) * (1 + 3) log 2 / 1 = 1.5 log 2, correctly rounded 0x1.0a2b23f3bab73p+0
        ("cross_entropy", "float64",
         {"input": [[0.0, 0.0], [0.0, 0.0]], "target": [0, -100], "weight": [1.0, 3.0], "label_smoothing": 0.5},
         [float.fromhex("0x1.0a2b23f3bab73p+0")]),
        # opposite class weights cancel the log terms exactly: 1 * log 2 - 1 * log 2 = 0, decided, not raised
        ("cross_entropy", "float64", {"input": [[0, 0]], "target": [[1, 1]], "weight": [1, -1]}, [0.0]),
        # the same through a log term: (L - 0) * 1 - (L - 2**24) * 1 = 2**24 exactly, in float16 past 65504: inf
        ("cross_entropy", "float16", {"input": [[0, 16777216]], "target": [[1, 1]], "weight": [1, -1]},
         [math.inf]),
        # a mean over an input of no element: NaN (torch too)
        ("cross_entropy", "float64", {"input": [], "target": []}, [math.nan]),
        # all targets ignored under "mean": 0/0, NaN (torch's documented result too)
        ("nll_loss", "float32", {"input": [[1.0, 2.0]], "target": [-100]}, [math.nan]),
        # probability targets with a -inf logit carrying no mass contribute nothing
        ("cross_entropy", "float32", {"input": [[0.0, "-inf"]], "target": [[1.0, 0.0]]}, [0.0]),
        # log_target: exp(t) (t - x) at t = x is exactly 0
        ("kl_div", "float64", {"input": [-1.5], "target": [-1.5], "log_target": True, "reduction": "sum"}, [0.0]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_hard_cases(capsys, name, fmt, kwargs, want):
    code, out, err = run(capsys, "exact", name, "--format", fmt, json.dumps(kwargs))
    assert code == 0, err
    got = [fields(line)[1] for line in out.strip().splitlines()]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if math.isnan(w):
            assert math.isnan(g)
        else:
            assert g == w and math.copysign(1, g) == math.copysign(1, w)


def test_inputs_not_in_the_format_are_rounded_with_a_note(capsys):
    code, out, err = run(capsys, "exact", "sigmoid", "--format", "bfloat16", '{"input": 0.1}')
    assert code == 0
    assert "not exactly representable in bfloat16" in err and "0.10009765625" in err
    exact, y, _ = fields(out.strip())
    assert exact.startswith("0.52500")  # sigmoid of the bfloat16 value 0.10009765625, not of 0.1


@pytest.mark.parametrize(
    "argv,message",
    [
        (["exact", "crossentropy", "{}"], "unknown oracle"),
        (["exact", "softmax", "--format", "float8", '{"input": [1]}'], "unknown format"),
        (["exact", "softmax", "{'input': [1]}"], "malformed JSON"),
        (["exact", "softmax", "[1, 2]"], "must be an object"),
        (["exact", "cross_entropy", '{"input": [[1, 2]], "target": [2]}'], "out of bounds"),
        (["exact", "cross_entropy", '{"input": [[1, 2]], "target": [0, 1]}'], "does not match"),
        (["exact", "cross_entropy", '{"input": [[1, 2], [3]], "target": [0, 1]}'], "not rectangular"),
        (["exact", "kl_div", '{"input": [0.5], "target": [-0.25]}'], "negative probability"),
        (["exact", "cross_entropy", '{"input": [[1, 2]], "target": [[-0.5, 1.5]]}'], "negative probability"),
        (["exact", "binary_cross_entropy", '{"input": [1.5], "target": [1.0]}'], "between 0 and 1"),
        # targets outside [0, 1] are refused as torch refuses them (binary_cross_entropy only: with logits, any)
        (["exact", "binary_cross_entropy", '{"input": [0.5], "target": [1.5]}'], "target should be between 0 and 1"),
        (["exact", "torch:binary_cross_entropy", '{"input": [0.5], "target": ["nan"]}'],
         "target should be between 0 and 1"),
        (["exact", "softmax", '{"input": [1], "bogus": 2}'], "takes no argument"),
        (["exact", "softmax", '{"input": ["one"]}'], "float literal"),
        (["exact", "softmax", '{"input": [true]}'], "numbers"),
        (["exact", "cross_entropy", '{"input": [[1, 2]]}'], "needs 'target'"),
        (["exact", "cross_entropy", '{"input": [[1, 2]], "target": [0], "reduction": "avg"}'], "reduction"),
        (["exact", "softplus", '{"input": [1], "beta": 0}'], "beta"),
        (["exact"], "required"),
        ([], "required"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lossproof: error:") and message in lines[0], err


def test_installed_command_runs_without_traceback():
    """The real entry point, in a subprocess: the same answer and the same one-line error."""
    ok = subprocess.run([sys.executable, "-m", "lossproof", "exact", "softplus", '{"input": 25.0}'],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and ok.stdout.startswith("25.0000000000138879438648675831")
    bad = subprocess.run([sys.executable, "-m", "lossproof", "exact", "softplus", "{"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


# hostile input (issue: reliability): deep nesting, calls too large for a command line, a missing file


def test_json_nested_too_deep_is_one_line_not_a_traceback():
    for depth in (900, 5000):
        text = '{"input": ' + "[" * depth + "1" + "]" * depth + "}"
        r = subprocess.run([sys.executable, "-m", "lossproof", "exact", "softplus", "-"], input=text,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2, r.stderr[-500:]
        assert "nested" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr[-500:]


def test_a_call_too_large_for_a_command_line_is_read_from_a_file_or_stdin(tmp_path):
    p = tmp_path / "call.json"
    p.write_text(json.dumps({"input": [[float(i % 7) for i in range(80_000)]]}))
    a = subprocess.run([sys.executable, "-m", "lossproof", "exact", "logsumexp", "--format", "float32", f"@{p}"],
                       capture_output=True, text=True, timeout=300)
    b = subprocess.run([sys.executable, "-m", "lossproof", "exact", "logsumexp", "--format", "float32", "-"],
                       input=p.read_text(), capture_output=True, text=True, timeout=300)
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    assert a.stdout == b.stdout and a.stdout.startswith("15.80158889144188"), a.stdout
    r = subprocess.run([sys.executable, "-m", "lossproof", "exact", "softplus", f"@{tmp_path / 'nope.json'}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr


def test_a_valid_call_with_huge_logits_prints_no_warning():
    r = subprocess.run([sys.executable, "-W", "error", "-m", "lossproof", "exact", "cross_entropy",
                        '{"input": [[1.7e308, -1.7e308, 0]], "target": [0], "reduction": "none"}'],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
