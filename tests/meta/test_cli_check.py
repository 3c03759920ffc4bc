"""``lossproof check`` as a user runs it (a process of its own, from the checkout; ``forked_command``: a fork of a
server that imported torch once): a function written the naive way fails with a minimal, runnable reproducer
(exit 1), a careful one passes (exit 0), and a usage error exits 2 with one line and no traceback. The example
functions are in examples/user_losses.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from tests.meta import forked_command

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def check(*args, timeout=300):
    t = time.monotonic()
    r = forked_command.run(["check", *args], cwd=ROOT, timeout=timeout)
    return r.returncode, r.stdout + r.stderr, time.monotonic() - t


@pytest.mark.parametrize("args,message", [
    (("nosuch", "examples/user_losses.py:careful_softplus"), "unknown loss 'nosuch'"),
    (("softplus", "examples/nofile.py:f"), "no such file"),
    (("softplus", "examples/user_losses.py:nofn"), "has no function 'nofn'"),
    (("softplus", "examples/user_losses.py:careful_softplus", "--framework", "mxnet"), "unknown framework"),
    (("softplus", "examples/user_losses.py:careful_softplus", "--dtype", "float8"), "unknown dtype"),
    (("softplus", "examples/user_losses.py:careful_softplus", "--profile", "fast"), "unknown profile"),
    # the flags are read before the user's module is imported (its torch or JAX import is not paid for a typo)
    (("softplus", "examples/nofile.py:f", "--dtype", "float8"), "unknown dtype"),
    (("softplus", "examples/nofile.py:f", "--profile", "fast"), "unknown profile"),
    (("softplus", "examples/nofile.py:f", "--device", "tpu"), "unknown device"),
])
def test_usage_errors_exit_2_with_one_line(args, message):
    code, out, _ = check(*args, timeout=120)
    assert code == 2, out
    assert out.strip().count("\n") == 0 and message in out and "Traceback" not in out, out


@pytest.fixture(scope="module")
def naive_softplus(tmp_path_factory):
    """One float32 check of examples/user_losses.py:naive_softplus with --json, read by the two tests below (its
    text and its findings file): one subprocess instead of two."""
    path = tmp_path_factory.mktemp("naive_softplus") / "f.json"
    code, out, secs = check("softplus", "examples/user_losses.py:naive_softplus", "--dtype", "float32",
                            "--json", str(path))
    return code, out, secs, path


def test_naive_softplus_fails_with_a_runnable_reproducer(naive_softplus):
    code, out, secs, _ = naive_softplus
    assert code == 1, out
    assert "is broken" in out and "reproducer:" in out, out
    assert len(out.splitlines()) <= 40, f"{len(out.splitlines())} lines:\n{out}"
    # the reproducer runs as printed and shows the failure: the user's function gives inf where the exact
    # value is finite
    block = []
    for ln in out[out.index("reproducer:"):].splitlines()[1:]:
        if not ln.startswith("    "):  # the reproducer's lines are indented under "reproducer:"
            break
        block.append(ln[4:])
    r = subprocess.run([sys.executable, "-c", "\n".join(block)], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    # the function's output in hex (inf), then the exact value, finite
    out_lines = r.stdout.strip().splitlines()
    assert out_lines[0] == "inf" and out_lines[1].startswith("exact 10000.0"), r.stdout
    print(f"naive softplus: exit 1 in {secs:.1f} s")


def test_json_findings(naive_softplus):
    import json
    code, out, _, path = naive_softplus
    doc = json.loads(path.read_text())
    assert doc["schema"] == "lossproof-findings/1" and doc["exit"] == code == 1
    failed = [c for c in doc["cells"] if c["outcome"] == "failed"]
    assert failed and failed[0]["minimal"] and failed[0]["reproducer"], doc


@pytest.mark.parametrize("loss,fn", [("softplus", "careful_softplus"), ("softplus", "where_softplus"),
                                     ("cross_entropy", "naive_cross_entropy"), ("sigmoid", "naive_sigmoid")])
def test_verdicts_on_the_examples(loss, fn):
    want = 0 if fn.startswith("careful") else 1
    # a failing example in every format (what a user runs first, `lossproof check LOSS TARGET`); the careful one
    # in float32 (its other formats: the zoo's controls)
    code, out, secs = check(loss, f"examples/user_losses.py:{fn}", *(("--dtype", "float32") if not want else ()))
    assert code == want, out[-3000:]
    if loss == "cross_entropy":  # it indexes with the target: probability targets are reported, never passed
        assert "not supported (reported, never passed): probability targets" in out, out[-3000:]
    lines = out.splitlines()
    # the title says what a cell measures; the column counts examples measured, never "of" an example budget (the
    # edge problems come on top of it, and a search of long rows ends at its compared numbers first)
    assert "(profile ci: each cell measures its edge problems, then searches up to 50 examples or 6,000" in lines[0]
    # with which framework's arrays it was called, and why (no --framework given)
    assert "  [torch, inferred: its code uses torch; --framework to choose]  " in lines[0], lines[0]
    assert not [ln for ln in lines[3:] if re.search(r"\s\d+/\d+\s", ln)], out[-3000:]
    # "about 40 lines": the table (3 + 4 cells per format: 19 in four formats) and the first finding in full (its
    # headline, 4 lines of numbers, the minimal input and a whole, runnable reproducer: up to 20 lines for a
    # gradient), the capabilities missing and the exit line: 45 at most
    assert len(lines) <= (45 if want else 40), f"{len(lines)} lines:\n{out}"
    if want:  # the findings table comes first, the most ordinary regime first
        rows = [ln for ln in lines[3:] if ln.strip() and " failed " in ln]
        order = ["typical", "extreme", "format edge", "-"]
        regimes = [next(r for r in order if f" {r} " in ln or ln.split()[4:5] == [r]) for ln in rows]
        assert regimes == sorted(regimes, key=order.index), out
    print(f"{fn}: exit {code} in {secs:.1f} s")


def test_a_function_that_raises_on_most_inputs_is_inconclusive(tmp_path):
    src = tmp_path / "picky.py"
    src.write_text("import torch\n\ndef softplus(input):\n    if input.abs().max() > 1:\n"
                   "        raise ValueError('inputs beyond 1 are not supported')\n"
                   "    return torch.logaddexp(input, torch.zeros_like(input))\n")
    code, out, _ = check("softplus", f"{src}:softplus", "--dtype", "float32")
    assert code == 3, out
    assert "inconclusive" in out and "inputs beyond 1 are not supported" in out, out


def test_a_capability_refused_only_under_one_reduction_is_probed_with_the_others(tmp_path):
    src = tmp_path / "probe.py"
    src.write_text("import torch.nn.functional as F\n\n"
                   "def cross_entropy(input, target, reduction='mean'):\n"
                   "    if target.is_floating_point() and reduction == 'mean':\n"
                   "        raise ValueError('probability targets need sum or none')\n"
                   "    return F.cross_entropy(input, target, reduction=reduction)\n")
    code, out, _ = check("cross_entropy", f"{src}:cross_entropy", "--dtype", "float32")
    # probed with sum and none, probability targets are found supported and measured: never "not supported"
    # and a silent pass; the examples drawn with mean raise, too few to leave the cell inconclusive
    assert "not supported (reported, never passed): probability targets" not in out, out
    assert code == 0, out


def test_a_function_that_takes_only_one_reduction_is_inconclusive_not_passed(tmp_path):
    """The issue's probe case carried to its end: a function that refuses every reduction but 'none' is probed
    with the others (its capabilities are present), then raises on most drawn examples: the check measured too
    little and exits 3, saying how many it measured and the function's first refusal, in every cell."""
    src = tmp_path / "only_none.py"
    src.write_text("import torch.nn.functional as F\n\n"
                   "def cross_entropy(input, target, reduction='mean'):\n"
                   "    if reduction != 'none':\n"
                   "        raise ValueError('only reduction=none is implemented')\n"
                   "    return F.cross_entropy(input, target, reduction=reduction)\n")
    code, out, _ = check("cross_entropy", f"{src}:cross_entropy", "--dtype", "float32")
    assert code == 3, out
    for prop in ("agreement", "no overflow"):
        line = next(ln for ln in out.splitlines() if ln.startswith(f"{prop}, float32: inconclusive"))
        assert "the function raised on" in line and "only reduction=none is implemented" in line, out
    assert "exit 3: inconclusive" in out, out


def test_failures_shared_with_the_reference_are_listed_not_hidden():
    """A user's failure that the reference shares does not gate (--strict gates it), but the check's output names
    it: the documented behaviour, how many examples showed it and in which formats (checking optax's own
    integer-label cross-entropy printed nothing of its large-offset behaviour before)."""
    from types import SimpleNamespace

    from lossproof.cli.check import _shared_notes

    def report(fmt, *props):
        return SimpleNamespace(nodeid=f"test_agreement.py::test_agreement[user:m:f-cross_entropy-{fmt}-cpu]",
                               user_properties=[("lossproof_measured", 40), *props])

    dev = "shared with jax: optax-ce-integer-labels-offset"
    lines = _shared_notes([report("float32", ("lossproof_shared", f"3 x {dev}")),
                           report("bfloat16", ("lossproof_shared", f"2 x {dev}")), report("float16")])
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{dev} (not gating; --strict gates it): 5 example(s) in float32/bfloat16: "), lines
    assert "large common offset" in lines[0]  # the behaviour's condition, from subjects/deviations.py
    assert _shared_notes([report("float32")]) == []


def test_a_function_that_breaks_its_declared_contract_is_told_what_it_returned(tmp_path):
    """A function declared per-example (--returns per-example) that returns the mean: the finding says what it
    returned against what the exact result holds, not the line of lossproof's code that noticed."""
    src = tmp_path / "means.py"
    src.write_text("import torch.nn.functional as F\n\n"
                   "def cross_entropy(input, target):\n"
                   "    return F.cross_entropy(input, target)\n")
    code, out, _ = check("cross_entropy", f"{src}:cross_entropy", "--returns", "per-example", "--dtype", "float32")
    assert code == 1, out
    row = next(ln for ln in out.splitlines() if ln.startswith("agreement"))
    assert re.search(r"ValueError: 1 values returned where the exact result has \d+ ", row), out
    assert "measure.py" not in row, out



def test_a_second_finding_on_the_same_input_is_shown_with_the_first():
    """A format change is stated first, then what the values are (monai's FocalLoss at gamma 0 returns float32 for
    float64 input and divides by N x C): the check printed the first line only, and the wrong result with its
    conventions, the one to fix, was lost."""
    from types import SimpleNamespace

    from lossproof.cli.check import _cell

    case = "user:m:f-cross_entropy-float64-cpu"
    text = "\n".join([f"E   AssertionError: {case}: returns float32 for float64 input (an output in another format)",
                      f"E   {case}: wrong result on a typical input: value element (0,) is off by more than 1%",
                      "E     expected (exact) 0.693147180559945309417232121458176568",
                      "E     got               0.3465735912322998"])
    report = SimpleNamespace(nodeid=f"test_agreement.py::test_agreement[{case}]", outcome="failed",
                             user_properties=[("lossproof_measured", 3)], longreprtext=text, longrepr=text)
    cell = _cell(report)
    assert cell.headline == f"{case}: returns float32 for float64 input (an output in another format)", cell
    assert cell.detail[0] == "and: wrong result on a typical input: value element (0,) is off by more than 1%", cell
    assert cell.detail[1].startswith("expected (exact) 0.6931"), cell


def test_a_capability_missing_in_several_formats_is_one_line_for_numpy_cells_too():
    """NumPy's cells name no device ("... cross_entropy in float32: IndexError: ..."): the check listed one line per
    format for them, where a torch function's were merged into one ("in float64/float32 on cpu")."""
    from lossproof.cli.check import Cell, findings_table

    def cell(fmt, device_text):
        c = Cell("agreement", fmt, "cpu", "passed", 5)
        c.not_supported = [f"probability targets (user:f.py:g cross_entropy in {fmt}{device_text}: IndexError: "
                           "arrays used as indices must be of integer type)"]
        return c

    for device_text in ("", " on cpu"):
        lines = findings_table("cross_entropy", "f.py:g", [cell("float64", device_text), cell("float32", device_text)],
                               0)
        lacking = [ln for ln in lines if ln.startswith("not supported")]
        assert len(lacking) == 1 and f"in float64/float32{device_text}: IndexError" in lacking[0], lines
