"""The regression corpus is what its README says: reproducible from lossproof/corpus/build.py, valid for the oracle, and
covering every loss in every format; promoting a witness is idempotent and validated."""

from __future__ import annotations

import json
import os

import pytest

from lossproof import corpus
from lossproof.catalogue import FORMATS
from lossproof.catalogue import NAMES as LOSSES
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
