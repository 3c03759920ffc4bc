"""Accepted findings (lossproof/accept.py): an entry names a documented behaviour or a condition from a small
vocabulary, with a reason; accepted findings are measured and shown, never dropped; an entry that matches nothing
is reported as unused; a malformed entry is one line naming it."""

from __future__ import annotations

import os

import pytest

from lossproof import accept
from tests.meta import forked_command

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("entry,message", [
    ({"regime": "extreme"}, "needs a reason"),
    ({"reason": "x"}, "needs at least one condition"),
    ({"reason": "x", "regime": "weird"}, "unknown regime 'weird'"),
    ({"reason": "x", "behaviour": "torch-no-such-thing"}, "unknown documented behaviour"),
    ({"reason": "x", "colour": "red"}, "unknown key 'colour'"),
    ({"reason": "x", "format": 16}, "format must be a string"),
])
def test_a_malformed_entry_is_one_line_naming_it(entry, message):
    with pytest.raises(accept.AcceptError, match=message) as e:
        accept.parse([entry], "f.toml")
    assert "f.toml accept entry 1" in str(e.value) and "\n" not in str(e.value)


def test_conditions_must_all_hold():
    (e,) = accept.parse([{"reason": "r", "regime": "extreme", "format": "float32", "parameter": "reduction=sum"}],
                        "f")
    kw = {"input": [[0.0, 100.0]], "target": [0], "reduction": "sum"}
    common = dict(subject="user:f", loss="cross_entropy", prop="agreement")
    assert e.matches(fmt="float32", kwargs=kw, **common)
    assert not e.matches(fmt="float16", kwargs=kw, **common)
    assert not e.matches(fmt="float32", kwargs={**kw, "reduction": "mean"}, **common)
    assert not e.matches(fmt="float32", kwargs={**kw, "input": [[0.0, 1.0]]}, **common)  # typical, not extreme


def test_a_behaviour_matches_where_its_condition_holds_for_the_reference():
    (e,) = accept.parse([{"reason": "r", "behaviour": "torch-ce-sum-overflow"}], "f")
    big = 1.7014118346046923e38
    kw = {"input": [[big, 0.0]] * 4, "target": [1] * 4, "reduction": "mean"}
    assert e.matches(subject="user:f", loss="cross_entropy", fmt="float32", prop="agreement", kwargs=kw,
                     reference="torch")
    assert not e.matches(subject="user:f", loss="cross_entropy", fmt="float32", prop="agreement",
                         kwargs={"input": [[0.0, 1.0]], "target": [1]}, reference="torch")


@pytest.mark.parametrize("text,message", [("[[accept]\n", "not valid TOML"), ("[other]\nx = 1\n", "unknown table")])
def test_a_bad_file_is_one_line(tmp_path, text, message):
    p = tmp_path / "a.toml"
    p.write_text(text)
    with pytest.raises(accept.AcceptError, match=message):
        accept.load_file(str(p))
    with pytest.raises(accept.AcceptError, match="no such accept file"):
        accept.load_file(str(tmp_path / "missing.toml"))


def test_check_with_accepted_findings_passes_shows_them_and_reports_unused_entries(tmp_path):
    p = tmp_path / "accept.toml"
    p.write_text('[[accept]]\nregime = "extreme"\nreason = "our activations stay within 50"\n\n'
                 '[[accept]]\nregime = "format edge"\nreason = "nor near the largest float"\n\n'
                 '[[accept]]\nbehaviour = "torch-ce-sum-overflow"\nreason = "matches nothing in softplus"\n')
    r = forked_command.run(["check", "softplus", "examples/user_losses.py:naive_softplus", "--dtype", "float32",
                            "--accept", str(p)], cwd=ROOT, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "accepted (measured, not gating)" in out and "our activations stay within 50" in out, out
    assert "unused accept entry (matched nothing)" in out and "matches nothing in softplus" in out, out
