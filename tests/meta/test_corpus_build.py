"""The regression corpus is what its README says: reproducible from lossproof/corpus/build.py, valid for the oracle, and
covering every loss in every format; promoting a witness is idempotent and validated."""

from __future__ import annotations

import json
import os

import pytest

from lossproof import corpus
from lossproof.cases import LIBRARIES
from lossproof.catalogue import FORMATS
from lossproof.catalogue import NAMES as LOSSES
from lossproof.cli import battery
from lossproof.corpus import build


def test_the_committed_corpus_is_what_the_generator_writes():
    for name, doc in build.documents().items():
        with open(os.path.join(corpus.GENERATED, name), encoding="utf-8") as f:
            assert f.read() == build.dumps(doc), (
                f"lossproof/corpus/v{corpus.VERSION}/{name} differs from lossproof.corpus.build's output")


def test_every_loss_and_format_has_cases_across_regimes():
    for loss in LOSSES:
        for fmt in FORMATS:
            cs = corpus.cases(loss, fmt)
            assert len(cs) >= 4, (loss, fmt, len(cs))
            assert len({c["regime"] for c in cs}) >= 4, (loss, fmt)


def test_ids_are_unique_and_stable():
    cs = corpus.cases()
    assert len({c["id"] for c in cs}) == len(cs)
    c = cs[0]
    assert corpus.case_id(c["loss"], c["format"], c["kwargs"]) == c["id"]


def test_promote_adds_once_to_a_corpus_of_ones_own_and_rejects_bad_witnesses(tmp_path):
    kw = {"input": [[0.0, 10000.0]], "target": [0]}
    d = str(tmp_path)
    cid, added = corpus.promote("cross_entropy", "float32", kw, "test witness", d)
    assert added and cid.startswith("cross_entropy-float32-")
    assert corpus.promote("cross_entropy", "float32", kw, "again", d) == (cid, False)
    assert [c["id"] for c in corpus.cases("cross_entropy", "float32", dirs=[d]) if c["id"] == cid] == [cid]
    assert cid not in {c["id"] for c in corpus.cases("cross_entropy", "float32")}  # the shipped corpus is untouched
    doc = json.loads((tmp_path / "promoted.json").read_text())
    assert doc["cases"][0]["provenance"] == "test witness"
    with pytest.raises(corpus.CorpusError):
        corpus.promote("cross_entropy", "float32", {"input": [[0.0, 1.0]], "target": [5]}, "bad target", d)
    with pytest.raises(corpus.CorpusError):
        corpus.promote("no_such_loss", "float32", kw, "bad loss", d)
    with pytest.raises(corpus.CorpusError, match="no such corpus folder"):
        corpus.promote("cross_entropy", "float32", kw, "no folder", str(tmp_path / "missing"))


def test_a_corpus_file_is_read_again_once_it_changes(tmp_path):
    """The corpus is parsed once per process while its files are unchanged: a witness promoted after a read, a
    file rewritten in place (the same inode) or removed, is seen by the next read, and a caller's changes to the
    returned cases do not reach the next caller."""
    d = str(tmp_path)
    kw = {"input": [[0.0, 10000.0]], "target": [0]}
    ours = lambda: [c for c in corpus.cases("cross_entropy", "float32", dirs=[d]) if c["provenance"] == "w"]  # noqa: E731
    assert ours() == []
    cid, _ = corpus.promote("cross_entropy", "float32", kw, "w", d)
    (got,) = ours()
    assert got["id"] == cid
    got["kwargs"]["input"][0][0] = 5.0  # a caller that changes what it got
    got["regime"] = "changed"
    (again,) = ours()
    assert again["kwargs"]["input"] == [[0.0, 10000.0]] and again["regime"] != "changed"
    path = tmp_path / "promoted.json"
    doc = json.loads(path.read_text())
    doc["cases"].append({**doc["cases"][0], "id": "second"})
    with open(path, "r+", encoding="utf-8") as f:  # in place: the same inode, a new size and time
        f.write(json.dumps(doc))
    assert sorted(c["id"] for c in ours()) == sorted([cid, "second"])
    path.unlink()
    assert ours() == []


@pytest.mark.parametrize("argv", [
    ["cross_entropy", "--format", "float32", "--note", "x", '{"input": [[0, 1]], "target": [7]}'],
    ["no_such_loss", "--format", "float32", "--note", "x", "{}"],
    ["cross_entropy", "--format", "float99", "--note", "x", "{}"],
    ["cross_entropy", "--format", "float32", "--note", "x", "{not json"],
])
def test_promote_command_rejects_bad_input_with_one_line(argv):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "lossproof", "promote", *argv], capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


_TENSORS = ("input", "target", "other", "weight", "pos_weight")


def _corpus_cells():
    """{(subject, loss, family, format): [whether a case can gate]} over every library subject's corpus calls: a
    case can gate when its inputs are finite (-inf masks aside) and no documented deviation's condition holds
    (``deviations.matching``), which is the battery's rule for a gating record (lossproof/battery/test_corpus.py,
    reports/schema.py ``gating``); the family is the gate's (reports.cells.family)."""
    from lossproof.cases import all_cases, restrict
    from lossproof.problems import finite_except_masks
    from reports.cells import family
    from subjects import deviations

    out = {}
    for case in all_cases(cuda_available=False):
        if case.device != "cpu":  # the conditions do not depend on the device
            continue
        for entry in corpus.cases(case.loss, case.fmt):
            kw = restrict(case, entry["kwargs"])
            if kw is None:
                continue
            fam = family({"loss": case.loss, "params": {k: v for k, v in kw.items() if k not in _TENSORS}})
            can_gate = finite_except_masks(case.loss, kw) and not deviations.matching(case.subject, case.loss, kw,
                                                                                       case.fmt)
            out.setdefault((case.subject, case.loss, fam, case.fmt), []).append(can_gate)
    return out


def test_every_cell_has_a_case_outside_every_deviation():
    """Issue 14 item 3: a cell whose every case falls under a documented deviation has no gating numbers, and the
    gate cannot see a regression there (torch's binary_cross_entropy was blind: every case held p = 0 or 1)."""
    cells = _corpus_cells()
    assert len(cells) >= 200, len(cells)  # every subject x loss x family x format the battery measures
    assert {s for s, *_ in cells} == set(LIBRARIES) == set(battery.LIBRARY_SUBJECTS.split(","))
    blind = sorted(k for k, v in cells.items() if not any(v))
    assert not blind, f"{len(blind)} cells have no corpus case outside every deviation's condition: {blind[:6]}"


def test_the_blind_cell_check_can_fail(monkeypatch):
    """The check above finds a blind cell when one is made: every torch BCE call declared under the clamp."""
    from subjects import deviations

    real = deviations.matching

    def everything_clamped(subject, loss, kwargs, fmt=None):
        if subject == "torch" and loss == "binary_cross_entropy":
            return [d for d in deviations.DEVIATIONS if d.id == "torch-bce-log-clamp"]
        return real(subject, loss, kwargs, fmt)

    monkeypatch.setattr(deviations, "matching", everything_clamped)
    blind = {k for k, v in _corpus_cells().items() if not any(v)}
    assert blind == {("torch", "binary_cross_entropy", f"reduction={r}", f) for r in ("none", "mean", "sum")
                     for f in FORMATS}
