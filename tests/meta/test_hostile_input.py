"""Hostile input at every entry point (issue 18 item 2): each case runs the command and must end with exit status 2,
exactly one line on stderr (no traceback, no usage dump, no warning) and nothing on stdout. Every case runs in this
process (``lossproof.cli.main``, as ``python -m lossproof`` sets it up), and one case of every entry point also as the
real command in a subprocess (``SUBPROCESS``).

The table (``CASES``) names the entry point first: ``exact``/``promote`` (the call's JSON, from the argument, @FILE
or standard input), ``gate``/``merge``/``report`` (results and baseline files), ``check``/``hunt`` (``--subject``
targets, accept files), ``verify``/``check`` (``[tool.lossproof]`` in pyproject.toml), ``detect`` (its options).
No time limit is asserted (timing assertions are banned here); ``HANG_GUARD`` only keeps a hang from stalling the
suite, and the measured times are in the README.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from reports import schema

ROOT = Path(__file__).resolve().parents[2]
#: a hang guard, not a timing assertion: a refusal takes ~3 s (the interpreter and torch's import) on this
#: machine, ten times that under a loaded CI runner is still a refusal, a hang is not
HANG_GUARD = 60

RECORD = {"run": "r1", "source": "corpus", "case_id": "c1", "property": "corpus", "subject": "torch",
          "loss": "cross_entropy", "device": "cpu", "format": "float32", "params": {}, "regime": None,
          "elements": 10, "max_ulp": 1.0, "mean_bits": 0.1, "correctly_rounded": 8, "verdicts": {"accurate": 1},
          "verdict": "accurate", "reason": None, "gating": True, "required": "stable", "deviation": None,
          "worst": None, "oracle_precision": 64}
RUN = {"id": "r1", "command": "pytest", "profile": "ci", "started": "2026-01-01T00:00:00+00:00", "environment": {}}
GOOD = json.dumps(schema.document([RUN], [RECORD]))
#: 50 MB: past any call or results file lossproof writes, and enough to show a reader that loads it whole
HUGE = 50 * 2**20


def _results(**record_changes):
    return json.dumps(schema.document([RUN], [RECORD, {**RECORD, "case_id": "c2", **record_changes}]))


def _deep(n):
    return "[" * n + "]" * n


#: the files the cases read: name -> bytes (a directory when None)
FILES = {
    "good.json": GOOD.encode(),
    "truncated.json": GOOD[: len(GOOD) // 2].encode(),
    "version2.json": GOOD.replace('"version":1', '"version":2').replace('"version": 1', '"version": 2').encode(),
    "record_ulp_str.json": _results(max_ulp="lots").encode(),
    "record_not_obj.json": json.dumps(schema.document([RUN], [RECORD, 5])).encode(),
    "record_elements_nan.json": _results(elements=float("nan")).encode(),
    "record_params_list.json": _results(params=[1, 2]).encode(),
    "record_no_loss.json": json.dumps(schema.document([RUN], [{k: v for k, v in RECORD.items() if k != "loss"}]))
    .encode(),
    "runs_not_obj.json": json.dumps(schema.document(["r1"], [RECORD])).encode(),
    "empty.json": b"",
    "adir": None,
    "binary.json": bytes(range(256)) * 64,
    "nul.json": b"\0" * 4096,
    "whitespace.json": b" " * HUGE,
    "giant_number.json": b"1" * 5_000_000,
    "deep.json": _deep(200_000).encode(),
    "baseline_v9.json": json.dumps({"schema": "lossproof-baseline", "version": 9, "environments": []}).encode(),
    "baseline_cell.json": json.dumps({"schema": "lossproof-baseline", "version": 2, "environments": [
        {"id": "e", "cells": [{"subject": "torch", "loss": "softplus", "family": "-", "device": "cpu",
                               "format": "float32", "max_ulp": "big"}]}]}).encode(),
    # exact's calls
    "call_deep.json": ('{"input": ' + _deep(100) + "}").encode(),
    "call_ws.json": b'{"input": [1.0]}' + b" " * HUGE,
    "call_giant_int.json": b'{"input": [' + b"1" * 5_000_000 + b"]}",
    "call_long_ok.json": ('{"input": [' + ",".join(["1.0"] * 10) + "]}").encode(),
    # --subject targets
    "subj_syntax.py": b"def f(:\n",
    "subj_importerror.py": b"import lossproof_no_such_module_anywhere\n",
    "subj_raises.py": b"raise RuntimeError('boom at import')\n",
    "subj_exits.py": b"import sys\nsys.exit(3)\n",
    "subj_binary.py": bytes(range(256)),
    "subj_notcallable.py": b"f = 5\n",
    # a valid subject (what is refused in these cases is elsewhere); it never runs, so it needs no torch
    "subj_ok.py": b"def f(input, beta=1.0, threshold=20.0):\n    return input\n",
    "hostile_raises_mod.py": b"raise ValueError('boom at import of a module')\n",
    "hostile_exits_mod.py": b"raise SystemExit(4)\n",
    "adir.py": None,
    # accept files
    "accept_not_toml.toml": b"[[accept]\nreason = \n",
    "accept_binary.toml": bytes(range(256)),
    "accept_reason_int.toml": b"[[accept]]\nformat = \"float32\"\nreason = 5\n",
    "accept_unknown_key.toml": b"[[accept]]\nformat = \"float32\"\nreason = \"r\"\ncolour = \"red\"\n",
    "accept_unknown_behaviour.toml": b"[[accept]]\nbehaviour = \"no-such-behaviour\"\nreason = \"r\"\n",
    "accept_no_condition.toml": b"[[accept]]\nreason = \"r\"\n",
    "accept_not_array.toml": b"accept = 5\n",
    "accept_other_table.toml": b"[other]\nx = 1\n",
    "accept_format_int.toml": b"[[accept]]\nformat = 32\nreason = \"r\"\n",
    "accept_deep.toml": b"accept = " + b"[" * 100_000,
    # the report's optional tables
    "zoo_truncated.json": b'{"records": [',
    "corpus_file": b"not a folder\n",
}

#: pyproject.toml files, one folder each (cfg_<name>/pyproject.toml)
PYPROJECTS = {
    "unknown_key": b"[tool.lossproof]\nbogus = 1\n",
    "formats_str_unknown": b"[tool.lossproof]\nformats = \"float33\"\n",
    "formats_int": b"[tool.lossproof]\nformats = [32]\n",
    "strict_str": b"[tool.lossproof]\nstrict = \"yes\"\n",
    "profile_int": b"[tool.lossproof]\nprofile = 5\n",
    "results_int": b"[tool.lossproof]\nresults = 5\n",
    "subjects_int": b"[tool.lossproof]\nsubjects = 5\n",
    "subjects_unknown_loss": b"[tool.lossproof.subjects]\nno_such_loss = \"m:f\"\n",
    "subjects_target_int": b"[tool.lossproof.subjects]\nsoftplus = 5\n",
    "subjects_target_missing": b"[tool.lossproof.subjects]\nsoftplus = \"lossproof_no_such_module:f\"\n",
    # a subject's own table (its target and conventions, lossproof.config.Subject)
    "subject_table_unknown_key": b"[tool.lossproof.subjects]\nsoftplus = {target = \"m:f\", colour = 1}\n",
    "subject_table_no_target": b"[tool.lossproof.subjects]\ncross_entropy = {class_axis = -1}\n",
    "subject_class_axis_str": b"[tool.lossproof.subjects]\ncross_entropy = {target = \"m:f\", class_axis = \"-1\"}\n",
    "subject_fixed_of_another_loss": (b"[tool.lossproof.subjects]\n"
                                      b"softplus = {target = \"m:f\", fixed = {log_target = true}}\n"),
    "accept_int": b"[tool.lossproof]\naccept = 5\n",
    "accept_reason_int": b"[[tool.lossproof.accept]]\nformat = \"float32\"\nreason = 5\n",
    "lossproof_not_table": b"[tool]\nlossproof = 5\n",
    "not_toml": b"[tool.lossproof\n",
    "binary": bytes(range(256)),
    "deep": b"[tool.lossproof]\nformats = " + b"[" * 100_000,
}

CE = '{"input": [[0.0, 1.0]], "target": [%s]}'
NLL = '{"input": [[-1.0, -0.5]], "target": [0], %s}'

#: (entry point, case id, argv (``{d}``: the folder holding FILES), standard input or None, working folder
#: relative to it or None)
CASES = [
    # -- exact: the call's JSON; NaN, infinity, 1e999, a bool or a float where a class index or a count is expected
    ("exact", "target-nan", ["exact", "cross_entropy", CE % "NaN"], None, None),
    ("exact", "target-inf", ["exact", "cross_entropy", CE % "Infinity"], None, None),
    ("exact", "target-1e999", ["exact", "cross_entropy", CE % "1e999"], None, None),
    ("exact", "target-bool", ["exact", "cross_entropy", CE % "true"], None, None),
    ("exact", "target-float", ["exact", "cross_entropy", CE % "1.5"], None, None),
    ("exact", "target-string", ["exact", "cross_entropy", CE % '"1"'], None, None),
    ("exact", "target-out-of-range", ["exact", "cross_entropy", CE % "7"], None, None),
    ("exact", "target-huge-int", ["exact", "cross_entropy", CE % ("9" * 400)], None, None),
    ("exact", "nll-target-nan", ["exact", "nll_loss", '{"input": [[-1.0, -0.5]], "target": [NaN]}'], None, None),
    ("exact", "ignore-index-nan", ["exact", "nll_loss", NLL % '"ignore_index": NaN'], None, None),
    ("exact", "ignore-index-inf", ["exact", "nll_loss", NLL % '"ignore_index": -Infinity'], None, None),
    ("exact", "ignore-index-1e999", ["exact", "nll_loss", NLL % '"ignore_index": 1e999'], None, None),
    ("exact", "ignore-index-bool", ["exact", "nll_loss", NLL % '"ignore_index": true'], None, None),
    ("exact", "ignore-index-float", ["exact", "nll_loss", NLL % '"ignore_index": 0.5'], None, None),
    ("exact", "dim-nan", ["exact", "log_softmax", '{"input": [1.0, 2.0], "dim": NaN}'], None, None),
    ("exact", "dim-float", ["exact", "log_softmax", '{"input": [1.0, 2.0], "dim": 0.5}'], None, None),
    ("exact", "dim-bool", ["exact", "log_softmax", '{"input": [1.0, 2.0], "dim": true}'], None, None),
    ("exact", "dim-huge", ["exact", "log_softmax", '{"input": [1.0, 2.0], "dim": ' + "9" * 400 + "}"], None, None),
    ("exact", "dim-out-of-range", ["exact", "log_softmax", '{"input": [1.0, 2.0], "dim": 5}'], None, None),
    ("exact", "label-smoothing-nan", ["exact", "cross_entropy",
                                      '{"input": [[0.0, 1.0]], "target": [1], "label_smoothing": NaN}'], None, None),
    ("exact", "label-smoothing-inf", ["exact", "cross_entropy",
                                      '{"input": [[0.0, 1.0]], "target": [1], "label_smoothing": Infinity}'],
     None, None),
    ("exact", "label-smoothing-str", ["exact", "cross_entropy",
                                      '{"input": [[0.0, 1.0]], "target": [1], "label_smoothing": "x"}'], None, None),
    ("exact", "reduction-int", ["exact", "nll_loss", NLL % '"reduction": 5'], None, None),
    ("exact", "reduction-unknown", ["exact", "nll_loss", NLL % '"reduction": "median"'], None, None),
    ("exact", "weight-length", ["exact", "nll_loss", NLL % '"weight": [1.0]'], None, None),
    ("exact", "weight-string", ["exact", "nll_loss", NLL % '"weight": "heavy"'], None, None),
    ("exact", "ragged-input", ["exact", "softplus", '{"input": [[1.0, 2.0], [3.0]]}'], None, None),
    ("exact", "input-object", ["exact", "softplus", '{"input": {"a": 1}}'], None, None),
    ("exact", "input-giant-int", ["exact", "softplus", '{"input": [' + "9" * 5000 + "]}"], None, None),
    ("exact", "not-an-object", ["exact", "softplus", "[1.0]"], None, None),
    ("exact", "unknown-argument", ["exact", "softplus", '{"input": 1.0, "colour": 2}'], None, None),
    ("exact", "unknown-oracle", ["exact", "no_such_loss", '{"input": 1.0}'], None, None),
    ("exact", "unknown-format", ["exact", "softplus", "--format", "float33", '{"input": 1.0}'], None, None),
    ("exact", "deep-argument", ["exact", "softplus", '{"input": ' + _deep(5000) + "}"], None, None),
    ("exact", "deep-file", ["exact", "softplus", "@{d}/call_deep.json"], None, None),
    ("exact", "deep-stdin", ["exact", "softplus", "-"], '{"input": ' + _deep(100_000) + "}", None),
    ("exact", "huge-whitespace-file", ["exact", "softplus", "@{d}/call_ws.json"], None, None),
    ("exact", "huge-whitespace-stdin", ["exact", "softplus", "-"], " " * HUGE, None),
    ("exact", "giant-number-file", ["exact", "softplus", "@{d}/call_giant_int.json"], None, None),
    ("exact", "binary-file", ["exact", "softplus", "@{d}/binary.json"], None, None),
    ("exact", "nul-file", ["exact", "softplus", "@{d}/nul.json"], None, None),
    ("exact", "empty-file", ["exact", "softplus", "@{d}/empty.json"], None, None),
    ("exact", "empty-stdin", ["exact", "softplus", "-"], "", None),
    ("exact", "directory", ["exact", "softplus", "@{d}/adir"], None, None),
    ("exact", "missing-file", ["exact", "softplus", "@{d}/no_such.json"], None, None),
    ("exact", "truncated-file", ["exact", "softplus", "@{d}/truncated.json"], None, None),
    # -- promote: the same call reader, and the corpus folder
    ("promote", "target-nan", ["promote", "cross_entropy", "-f", "float32", "--note", "n", "--corpus", "{d}/corp",
                               CE % "NaN"], None, None),
    ("promote", "deep-stdin", ["promote", "softplus", "-f", "float32", "--note", "n", "--corpus", "{d}/corp", "-"],
     '{"input": ' + _deep(100_000) + "}", None),
    ("promote", "binary-file", ["promote", "softplus", "-f", "float32", "--note", "n", "--corpus", "{d}/corp",
                                "@{d}/binary.json"], None, None),
    ("promote", "corpus-is-a-file", ["promote", "softplus", "-f", "float32", "--note", "n", "--corpus",
                                     "{d}/corpus_file", '{"input": [30.0]}'], None, None),
    ("promote", "variant", ["promote", "torch:softplus", "-f", "float32", "--note", "n", "--corpus", "{d}/corp",
                            '{"input": [30.0]}'], None, None),
    # -- gate: results files
    *[("gate", f"results-{name}", ["gate", "--baseline", "{d}/good.json", f"{{d}}/{f}"], None, None)
      for name, f in (("truncated", "truncated.json"), ("version2", "version2.json"),
                      ("record-ulp-str", "record_ulp_str.json"), ("record-not-object", "record_not_obj.json"),
                      ("record-elements-nan", "record_elements_nan.json"), ("record-params-list",
                                                                            "record_params_list.json"),
                      ("record-no-loss", "record_no_loss.json"), ("runs-not-objects", "runs_not_obj.json"),
                      ("empty", "empty.json"), ("directory", "adir"), ("binary", "binary.json"),
                      ("nul", "nul.json"), ("huge-whitespace", "whitespace.json"),
                      ("giant-number", "giant_number.json"), ("deep", "deep.json"), ("missing", "no_such.json"))],
    # -- gate: baseline files
    *[("gate", f"baseline-{name}", ["gate", "--baseline", f"{{d}}/{f}", "{d}/good.json"], None, None)
      for name, f in (("truncated", "truncated.json"), ("other-version", "baseline_v9.json"),
                      ("cell-wrong-type", "baseline_cell.json"), ("record-wrong-type", "record_ulp_str.json"),
                      ("empty", "empty.json"), ("directory", "adir"), ("binary", "binary.json"),
                      ("huge-whitespace", "whitespace.json"), ("giant-number", "giant_number.json"),
                      ("deep", "deep.json"), ("missing", "no_such.json"))],
    ("gate", "update-baseline-directory", ["gate", "--update", "--baseline", "{d}/adir", "{d}/good.json"], None,
     None),
    # -- merge
    *[("merge", f"results-{name}", ["merge", "--out", "{d}/merged_out.json", "{d}/good.json", f"{{d}}/{f}"], None,
       None)
      for name, f in (("truncated", "truncated.json"), ("version2", "version2.json"),
                      ("record-wrong-type", "record_ulp_str.json"), ("empty", "empty.json"), ("directory", "adir"),
                      ("binary", "binary.json"), ("deep", "deep.json"))],
    ("merge", "out-is-a-directory", ["merge", "--out", "{d}/adir", "{d}/good.json"], None, None),
    ("merge", "out-folder-is-a-file", ["merge", "--out", "{d}/corpus_file/m.json", "{d}/good.json"], None, None),
    # -- report --no-run
    *[("report", f"results-{name}", ["report", "--no-run", "--out", "{d}/r.html", "--results", f"{{d}}/{f}"], None,
       None)
      for name, f in (("truncated", "truncated.json"), ("version2", "version2.json"),
                      ("record-wrong-type", "record_ulp_str.json"), ("record-not-object", "record_not_obj.json"),
                      ("empty", "empty.json"), ("directory", "adir"), ("binary", "binary.json"),
                      ("huge-whitespace", "whitespace.json"), ("deep", "deep.json"), ("missing", "no_such.json"))],
    ("report", "zoo-truncated", ["report", "--no-run", "--out", "{d}/r.html", "--results", "{d}/good.json",
                                 "--zoo", "{d}/zoo_truncated.json"], None, None),
    ("report", "zoo-directory", ["report", "--no-run", "--out", "{d}/r.html", "--results", "{d}/good.json",
                                 "--zoo", "{d}/adir"], None, None),
    ("report", "worst-known-binary", ["report", "--no-run", "--out", "{d}/r.html", "--results", "{d}/good.json",
                                      "--worst-known", "{d}/binary.json"], None, None),
    ("report", "out-is-a-directory", ["report", "--no-run", "--out", "{d}/adir", "--results", "{d}/good.json"],
     None, None),
    # -- check: --subject targets that do not exist, do not import or are not callable
    *[("check", f"target-{name}", ["check", "softplus", target], None, None)
      for name, target in (("no-module", "lossproof_no_such_module:f"), ("no-file", "{d}/no_such.py:f"),
                           ("file-is-a-directory", "{d}/adir.py:f"), ("syntax-error", "{d}/subj_syntax.py:f"),
                           ("import-error", "{d}/subj_importerror.py:f"), ("raises", "{d}/subj_raises.py:f"),
                           ("exits", "{d}/subj_exits.py:f"), ("binary", "{d}/subj_binary.py:f"),
                           ("not-callable", "{d}/subj_notcallable.py:f"), ("no-function", "{d}/subj_ok.py:g"),
                           ("module-raises", "hostile_raises_mod:f"), ("module-exits", "hostile_exits_mod:f"),
                           ("module-attr-not-callable", "os:sep"), ("no-colon", "subj_ok"), ("no-module-part", ":f"),
                           ("no-function-part", "os:"))],
    ("check", "unknown-loss", ["check", "no_such_loss", "{d}/subj_ok.py:f"], None, None),
    ("check", "unknown-framework", ["check", "softplus", "{d}/subj_ok.py:f", "--framework", "mxnet"], None, None),
    # -- check: conventions (issue 16: the class axis and what the function returns, for any framework)
    ("check", "class-axis-not-an-int", ["check", "cross_entropy", "{d}/subj_ok.py:f", "--class-axis", "last"], None,
     None),
    ("check", "class-axis-2", ["check", "cross_entropy", "{d}/subj_ok.py:f", "--class-axis", "2"], None, None),
    ("check", "class-axis-without-classes", ["check", "softplus", "{d}/subj_ok.py:f", "--class-axis", "-1"], None,
     None),
    ("check", "unknown-returns", ["check", "cross_entropy", "{d}/subj_ok.py:f", "--returns", "median"], None, None),
    ("check", "returns-of-an-unreduced-loss", ["check", "softplus", "{d}/subj_ok.py:f", "--returns", "sum"], None,
     None),
    ("check", "returns-reduction-arg-without-it", ["check", "cross_entropy", "{d}/subj_ok.py:f", "--returns",
                                                   "reduction-arg", "--framework", "jax"], None, None),
    ("check", "unknown-targets", ["check", "cross_entropy", "{d}/subj_ok.py:f", "--targets", "soft"], None, None),
    ("check", "targets-of-a-loss-without-two-kinds", ["check", "nll_loss", "{d}/subj_ok.py:f", "--targets", "index"],
     None, None),
    # --fixed: a parameter the function has built in (subjects.user.parse_fixed, check_fixed)
    *[("check", f"fixed-{name}", ["check", loss, "{d}/subj_ok.py:f", "--fixed", item], None, None)
      for name, loss, item in [("no-value", "cross_entropy", "label_smoothing"),
                               ("empty-value", "cross_entropy", "label_smoothing="),
                               ("unknown-name", "cross_entropy", "temperature=2"),
                               ("not-of-this-loss", "softplus", "label_smoothing=0.1"),
                               ("smoothing-not-a-number", "cross_entropy", "label_smoothing=lots"),
                               ("smoothing-beyond-one", "cross_entropy", "label_smoothing=1.5"),
                               ("smoothing-nan", "cross_entropy", "label_smoothing=nan"),
                               ("ignore-index-not-an-int", "nll_loss", "ignore_index=0.5"),
                               ("log-target-not-a-bool", "kl_div", "log_target=maybe")]],
    ("check", "fixed-twice", ["check", "cross_entropy", "{d}/subj_ok.py:f", "--fixed", "label_smoothing=0.1",
                              "--fixed", "label_smoothing=0.2"], None, None),
    ("check", "unknown-dtype", ["check", "softplus", "{d}/subj_ok.py:f", "--dtype", "float33"], None, None),
    ("check", "unknown-device", ["check", "softplus", "{d}/subj_ok.py:f", "--device", "tpu"], None, None),
    ("check", "unknown-profile", ["check", "softplus", "{d}/subj_ok.py:f", "--profile", "fast"], None, None),
    # -- check: accept files
    *[("check", f"accept-{name}", ["check", "softplus", "{d}/subj_ok.py:f", "--accept", f"{{d}}/{f}"], None, None)
      for name, f in (("missing", "no_such.toml"), ("directory", "adir"), ("not-toml", "accept_not_toml.toml"),
                      ("binary", "accept_binary.toml"), ("reason-int", "accept_reason_int.toml"),
                      ("unknown-key", "accept_unknown_key.toml"),
                      ("unknown-behaviour", "accept_unknown_behaviour.toml"),
                      ("no-condition", "accept_no_condition.toml"), ("not-array", "accept_not_array.toml"),
                      ("other-table", "accept_other_table.toml"), ("format-int", "accept_format_int.toml"),
                      ("deep", "accept_deep.toml"), ("huge-whitespace", "whitespace.json"))],
    # -- check and verify: [tool.lossproof] in the project's pyproject.toml
    # (check runs the function it names, not the configured ones: a configured target that does not import is
    # verify's error, not check's)
    *[("check", f"pyproject-{name}", ["check", "softplus", "{d}/subj_ok.py:f"], None, f"cfg_{name}")
      for name in PYPROJECTS if name != "subjects_target_missing"],
    *[("verify", f"pyproject-{name}", ["verify", "--losses", "softplus"], None, f"cfg_{name}")
      for name in ("unknown_key", "formats_int", "accept_reason_int", "not_toml", "binary",
                   "subjects_target_missing")],
    ("verify", "unknown-loss", ["verify", "--losses", "no_such_loss"], None, None),
    ("verify", "unknown-format", ["verify", "--formats", "float33"], None, None),
    ("verify", "unknown-profile", ["verify", "--profile", "fast"], None, None),
    ("verify", "workers-word", ["verify", "--workers", "many"], None, None),
    # -- hunt
    *[("hunt", f"target-{name}", ["hunt", "softplus", target, "--budget", "1"], None, None)
      for name, target in (("no-module", "lossproof_no_such_module:f"), ("syntax-error", "{d}/subj_syntax.py:f"),
                           ("raises", "{d}/subj_raises.py:f"), ("exits", "{d}/subj_exits.py:f"),
                           ("not-callable", "{d}/subj_notcallable.py:f"), ("module-raises", "hostile_raises_mod:f"))],
    ("hunt", "conventions-of-torch", ["hunt", "cross_entropy", "torch", "--fixed", "label_smoothing=0.1"], None,
     None),
    ("hunt", "fixed-unknown-name", ["hunt", "cross_entropy", "{d}/subj_ok.py:f", "--fixed", "temperature=2"], None,
     None),
    ("hunt", "budget-nan", ["hunt", "softplus", "torch", "--budget", "nan"], None, None),
    ("hunt", "budget-inf", ["hunt", "softplus", "torch", "--budget", "inf"], None, None),
    ("hunt", "budget-word", ["hunt", "softplus", "torch", "--budget", "long"], None, None),
    ("hunt", "top-zero", ["hunt", "softplus", "torch", "--top", "0"], None, None),
    ("hunt", "top-float", ["hunt", "softplus", "torch", "--top", "1.5"], None, None),
    ("hunt", "seed-word", ["hunt", "softplus", "torch", "--seed", "x"], None, None),
    ("hunt", "record-no-folder", ["hunt", "softplus", "torch", "--record", "{d}/no_such/w.json"], None, None),
    ("hunt", "promote-not-a-folder", ["hunt", "softplus", "torch", "--promote", "{d}/corpus_file"], None, None),
    # -- detect
    ("detect", "shrink-nan", ["detect", "--shrink", "nan"], None, None),
    ("detect", "shrink-negative", ["detect", "--shrink", "-1"], None, None),
    ("detect", "unknown-member", ["detect", "--members", "no_such_member"], None, None),
    ("detect", "json-no-folder", ["detect", "--json", "{d}/no_such/d.json"], None, None),
    ("detect", "examples-zero", ["detect", "--examples", "0"], None, None),
    ("detect", "examples-word", ["detect", "--examples", "many"], None, None),
    ("detect", "work-nan", ["detect", "--work", "nan"], None, None),
    ("detect", "work-inf", ["detect", "--work", "inf"], None, None),
    # -- the command line itself
    ("cli", "no-command", [], None, None),
    ("cli", "unknown-command", ["frobnicate"], None, None),
    ("cli", "unknown-option", ["gate", "--frobnicate"], None, None),
]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("hostile")
    for name, data in FILES.items():
        if data is None:
            (d / name).mkdir()
        else:
            (d / name).write_bytes(data)
    for name, text in PYPROJECTS.items():
        (d / f"cfg_{name}").mkdir()
        (d / f"cfg_{name}" / "pyproject.toml").write_bytes(text)
    (d / "corp").mkdir()
    return d


def lossproof(argv, cwd, stdin=None):
    env = {**os.environ, "LOSSPROOF_CACHE": str(Path(cwd) / ".cache"), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "lossproof", *argv], cwd=cwd, input=stdin, capture_output=True,
                          text=True, errors="replace", timeout=HANG_GUARD, env=env)


def lossproof_in_process(argv, cwd, stdin, monkeypatch, capfd):
    """``lossproof.cli.main(argv)`` in this process, set up as ``python -m lossproof`` would be (the working folder
    first on sys.path, the cache beside it, the given standard input): (exit status, stdout, stderr), read at the
    file descriptors, so that output from C code would show too. A subprocess costs about half a second of
    interpreter and imports; the table's cases run here, and ``SUBPROCESS`` runs one case of every entry point
    (and the ones that exit while importing) as the real command, where a warning or traceback printed on the way
    out of the interpreter would show."""
    from lossproof.cli import main

    monkeypatch.chdir(cwd)
    monkeypatch.syspath_prepend(str(cwd))
    monkeypatch.setenv("LOSSPROOF_CACHE", str(Path(cwd) / ".cache"))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO((stdin or "").encode())))
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        # what an interpreter prints by default (its default filters hide the deprecation kinds)
        warnings.simplefilter("default")
        for hidden in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", hidden)
        code = main(argv)
    out, err = capfd.readouterr()
    err += "".join(f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}\n" for w in caught)
    return code, out, err


def _first_of_each_entry_point():
    seen = {}
    for c in CASES:
        seen.setdefault(c[0], c)
    return list(seen.values())


#: the cases also run as the real command in a subprocess: the first of every entry point, and the targets that
#: raise SystemExit or nest past the recursion limit while being read
SUBPROCESS = _first_of_each_entry_point() + [c for c in CASES if c[1] in (
    "target-exits", "target-module-exits", "deep-stdin") and c[0] in ("check", "exact")]


def _assert_refused(code, out, err, argv, hostile):
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and not out, f"exit {code}, stdout {out[-2000:]!r}, stderr {err[-3000:]!r}"
    assert lines[0].startswith("lossproof: error: ") and "Traceback" not in lines[0], lines[0]
    assert len(lines[0]) <= 1000, f"a line of {len(lines[0])} characters"  # one readable line, not a dump
    if argv[:1] in (["gate"], ["merge"], ["report"]):  # nothing written over a file that was refused
        assert not (hostile / "merged_out.json").exists() and not (hostile / "r.html").exists()


@pytest.mark.parametrize("entry, case, argv, stdin, cwd", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_hostile_input_is_one_line_and_exit_2(hostile, monkeypatch, capfd, entry, case, argv, stdin, cwd):
    argv = [a.replace("{d}", str(hostile)) for a in argv]
    code, out, err = lossproof_in_process(argv, hostile / cwd if cwd else hostile, stdin, monkeypatch, capfd)
    _assert_refused(code, out, err, argv, hostile)


@pytest.mark.parametrize("entry, case, argv, stdin, cwd", SUBPROCESS, ids=[f"{c[0]}-{c[1]}" for c in SUBPROCESS])
def test_hostile_input_as_the_real_command(hostile, entry, case, argv, stdin, cwd):
    argv = [a.replace("{d}", str(hostile)) for a in argv]
    r = lossproof(argv, hostile / cwd if cwd else hostile, stdin)
    _assert_refused(r.returncode, r.stdout, r.stderr, argv, hostile)


@pytest.mark.parametrize("target", ["lossproof_no_such_module:f", "{d}/no_such.py:f", "{d}/subj_syntax.py:f",
                                    "{d}/subj_importerror.py:f", "{d}/subj_raises.py:f", "{d}/subj_exits.py:f",
                                    "{d}/subj_binary.py:f", "{d}/subj_notcallable.py:f", "{d}/subj_ok.py:g",
                                    "hostile_raises_mod:f", "hostile_exits_mod:f", "os:sep", "subj_ok", ":f"])
def test_the_public_api_refuses_a_bad_subject_with_one_exception_type(hostile, monkeypatch, target):
    """``lossproof.check(loss, "module:function")``: a target that does not exist, does not import (a syntax error,
    an import error, an exception, sys.exit) or is not callable raises SubjectError (a ValueError) with one line,
    before anything runs; never the module's own exception from deep inside, never SystemExit."""
    import lossproof
    from subjects.user import SubjectError

    monkeypatch.syspath_prepend(str(hostile))
    with pytest.raises(SubjectError) as e:
        lossproof.check("softplus", target.replace("{d}", str(hostile)))
    assert "\n" not in str(e.value) and str(e.value)


def test_the_public_api_refuses_what_is_not_a_function(hostile):
    import lossproof

    with pytest.raises(TypeError, match="is not callable"):
        lossproof.check("softplus", 5)
    with pytest.raises(ValueError, match="unknown loss"):
        lossproof.check("no_such_loss", abs)


@pytest.mark.parametrize("kwargs,message", [
    ({"framework": "mxnet"}, "unknown framework 'mxnet'"),
    ({"class_axis": 2}, "class axis 2"),
    ({"returns": "median"}, "returns 'median'"),
    ({"formats": ["float33"]}, "unknown format 'float33'"),
    ({"formats": []}, "no format given"),
    ({"devices": ["tpu"]}, "unknown device 'tpu'"),
    ({"properties": ["monotone"]}, "unknown property 'monotone'"),
])
def test_the_public_api_refuses_an_unknown_choice_instead_of_checking_nothing(kwargs, message):
    """An unknown framework, format, device or property selected no cell at all: an empty Findings whose ``ok``
    was True, a silent pass. Each is refused before anything runs."""
    import lossproof

    with pytest.raises(ValueError, match=message):
        lossproof.check("softplus", abs, **kwargs)


def test_the_public_api_calls_a_cell_that_measured_too_little_inconclusive_never_ok(tmp_path, monkeypatch):
    """A function that raises on most inputs passes every example it takes, yet measured too little: the API's
    Findings is not ok, the cells say inconclusive and why, and assert_stable raises with that table."""
    import lossproof

    src = tmp_path / "picky_api.py"
    src.write_text("import torch\n\ndef softplus(input):\n    if input.abs().max() > 1:\n"
                   "        raise ValueError('inputs beyond 1 are not supported')\n"
                   "    return torch.logaddexp(input, torch.zeros_like(input))\n")
    found = lossproof.check("softplus", f"{src}:softplus", formats="float32", properties=["agreement"])
    assert not found.findings and not found.ok, found.table()
    (cell,) = found.inconclusive
    assert cell.status == "inconclusive" and "inputs beyond 1 are not supported" in cell.note, found.table()
    with pytest.raises(AssertionError, match="inconclusive"):
        lossproof.assert_stable("softplus", f"{src}:softplus", formats=["float32"], properties=["agreement"])
