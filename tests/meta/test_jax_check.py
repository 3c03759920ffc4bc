"""``lossproof check --framework jax`` as a user runs it (a process of its own, from the checkout:
``forked_command``) on
examples/jax_losses.py, in one format (float16, where the naive loss's unshifted exp overflows from a logit of
11.1 on), to keep it short (about 45 s each on 2 cores): the naive loss fails (exit 1) with a typical-regime
finding first, the careful one passes (exit 0)."""

from __future__ import annotations

import os

import pytest

from subjects import jax_subject
from tests.meta import forked_command

if jax_subject.missing():
    pytest.skip(jax_subject.missing(), allow_module_level=True)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def check(target, tmp_path):
    r = forked_command.run(["check", "cross_entropy", f"examples/jax_losses.py:{target}", "--framework", "jax",
                            "--class-axis", "-1", "--dtype", "float16", "--device", "cpu",
                            "--results", str(tmp_path / "results.json")], cwd=ROOT, timeout=400)
    return r.returncode, r.stdout + r.stderr


def test_naive_jax_ce_fails_on_a_typical_input(tmp_path):
    code, out = check("naive_jax_ce", tmp_path)
    assert code == 1, out
    assert "Traceback" not in out, out
    (first,) = [line for line in out.splitlines() if line.startswith("first to fix:")]
    assert first.endswith("float16 (typical)"), out


def test_careful_jax_ce_passes(tmp_path):
    code, out = check("careful_jax_ce", tmp_path)
    assert code == 0, out
    assert "Traceback" not in out and "exit 0" in out, out
