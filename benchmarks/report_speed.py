"""How long the HTML report takes to build from a large results document (issue: under 10 s for 100,000 records).

    .venv/bin/python benchmarks/report_speed.py [--records 100000] [--out out/report-speed.html]

Generates a synthetic results document shaped like a real run (reports/schema.py records; every loss, parameter
families, torch in four formats, our NumPy losses in three, SciPy in two: about 170 cells, inputs of 4 to 64 exact
hex numbers, a few failing and reported-only records per cell, Hypothesis and seed records), then times
``reports.html.build_report`` (the page written atomically) and prints the time, the cell count and the size.
``synthetic_doc`` is also what tests/meta/test_reports.py builds its reports from.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

REDUCING = ("cross_entropy", "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div")
ELEMENTWISE = ("log_softmax", "softmax", "logsumexp", "sigmoid", "logsigmoid", "softplus", "xlogy")
SCIPY = ("log_softmax", "softmax", "logsumexp", "sigmoid", "logsigmoid", "xlogy", "kl_div")
SUBJECT_FORMATS = {"torch": ("float64", "float32", "float16", "bfloat16"), "numpy": ("float64", "float32", "float16"),
                   "scipy": ("float64", "float32")}
BITS = {"float64": 64, "float32": 32, "float16": 16, "bfloat16": 16}


def _families(loss):
    if loss in REDUCING:
        fams = [{"reduction": "none"}, {}, {"reduction": "sum"}]
        if loss == "cross_entropy":
            fams.append({"label_smoothing": (0.1).hex()})
        return fams
    return [{}]


def cells():
    """[(subject, loss, params, format)] of a realistic run."""
    out = []
    for loss in REDUCING + ELEMENTWISE:
        for params in _families(loss):
            for subject, fmts in SUBJECT_FORMATS.items():
                if subject == "scipy" and (loss not in SCIPY or params.get("reduction") not in (None, "none")):
                    continue
                for fmt in fmts:
                    out.append((subject, loss, params, fmt))
    return out


def _record(rng, run, subject, loss, params, fmt, i, source="corpus", prop="corpus"):
    n_in = rng.choice((4, 8, 16, 64))
    scale = 10 ** rng.uniform(-30, 30) if rng.random() < 0.3 else 10 ** rng.uniform(-1, 2)
    xs = [rng.uniform(-scale, scale) for _ in range(n_in)]
    inp = {"input": [x.hex() for x in xs]}
    if loss in ("cross_entropy", "nll_loss"):
        inp = {"input": [inp["input"]], "target": [rng.randrange(n_in)]}
    elif loss in ("binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div", "xlogy"):
        inp["target" if loss != "xlogy" else "other"] = [rng.random().hex() for _ in range(n_in)]
    u = rng.random()
    verdict = ("correctly_rounded" if u < 0.55 else "accurate" if u < 0.9 else "stable" if u < 0.985
               else "unstable" if u < 0.997 else "broken")
    ulp = {"correctly_rounded": rng.uniform(0, 0.5), "accurate": rng.uniform(0.5, 4), "stable": rng.uniform(4, 300),
           "unstable": rng.uniform(300, 1e6), "broken": float("inf")}[verdict]
    bits = min(BITS[fmt], math.log2(1 + ulp)) if ulp >= 0.5 else 0.0
    elements = rng.choice((1, 2, n_in))
    cr = elements if verdict == "correctly_rounded" else rng.randrange(elements)
    deviation = "torch-softplus-threshold" if (subject == "torch" and loss == "softplus" and rng.random() < 0.05) \
        else None
    y = rng.uniform(0.1, 10)
    return {
        "run": run, "source": source, "case_id": f"{loss}-{fmt}-{i:06x}", "property": prop,
        "subject": subject, "loss": loss, "device": "cpu", "format": fmt, "params": dict(params), "regime": None,
        "elements": elements, "max_ulp": ulp, "mean_bits": bits / 2, "correctly_rounded": cr,
        "verdicts": {verdict: 1, "correctly_rounded": cr}, "verdict": verdict, "reason": None,
        "gating": deviation is None, "deviation": deviation,
        "worst": {"kind": rng.choice(("value", "grad")), "index": [0], "y": "nan" if verdict == "broken" else y.hex(),
                  "z": repr(y * (1 + 1e-3 * (verdict == "unstable"))), "z_rounded": y.hex(), "ulp": ulp,
                  "bits": float(bits), "verdict": verdict, "input": inp, "input_numbers": n_in * 2},
        "oracle_precision": 64,
    }


def synthetic_doc(n_records=100_000, seed=0, with_other_sources=True):
    """A results document (reports/schema.py) of ``n_records`` corpus records spread over ``cells()``, plus a few
    hundred Hypothesis, fixed and seed records."""
    from reports import schema

    rng = random.Random(seed)
    run = "synthetic0001"
    cs = cells()
    distinct = [_record(rng, run, *cs[i % len(cs)], i) for i in range(min(n_records, 20 * len(cs)))]
    records = distinct + [{**distinct[i % len(distinct)], "case_id": f"c{i:06x}"}  # the same inputs, new ids
                          for i in range(len(distinct), n_records)]
    if with_other_sources:
        for i in range(min(300, n_records // 10 + 3)):
            records.append(_record(rng, run, *cs[rng.randrange(len(cs))], i, source="hypothesis", prop="agreement"))
        for i in range(6):
            records.append(_record(rng, run, "torch", "cross_entropy", {}, "float32", i, source="fixed",
                                   prop="seed_notebook_result_is_reproduced_bit_for_bit"))
    env = {"python": "3.11.7", "platform": "Linux-synthetic", "machine": "x86_64", "processor": "x86_64",
           "mpmath_backend": "gmpy", "torch": "2.13.0+cpu", "numpy": "2.4.6", "scipy": "1.17.1", "mpmath": "1.3.0",
           "hypothesis": "6.170.17", "gmpy2": "2.3.2", "pytest": "9.2.0", "cuda": [], "cpu_flush_to_zero": False,
           "torch_threads": 2}
    runs = [{"id": run, "command": "pytest -n auto tests/test_corpus.py (synthetic)", "profile": "ci",
             "started": "2026-01-01T00:00:00+00:00", "environment": env}]
    return schema.document(runs, records)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "report-speed.html"))
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    doc = synthetic_doc(args.records)
    t1 = time.perf_counter()
    from reports import html

    html.build_report(doc, args.out)
    t2 = time.perf_counter()
    from reports import cells as C

    n_cells = len(C.summarize(C.corpus_records(doc)))
    print(f"{len(doc['records'])} records ({args.records} corpus) in {n_cells} cells: generated in {t1 - t0:.1f} s, "
          f"report built in {t2 - t1:.2f} s (imports included), {os.path.getsize(args.out) / 1e6:.1f} MB -> "
          f"{args.out}")
    return t2 - t1


if __name__ == "__main__":
    main()
