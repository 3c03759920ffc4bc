"""The sweep itself (lossproof/sweep.py): its vectorised verdicts are the battery's (lossproof.measure on the
one-element call) element for element, a known-bad implementation fails it, and the float32 path on Dask (a
two-worker local cluster) gives the in-process row on a small range and resumes from its completed chunks."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from lossproof import sweep
from lossproof.measure import measure
from lossproof.verdicts import RANK, VERDICTS


@pytest.mark.parametrize("function", sweep.FUNCTIONS)
@pytest.mark.parametrize("fmt", ["float16", "bfloat16"])
def test_vectorised_verdicts_are_the_battery_verdicts(function, fmt):
    """On 150 sampled inputs (and the worst ones), every verdict, RN(z) and ULP error of the vectorised path is
    measure's on the call f([x])."""
    x = sweep.inputs(fmt, 0, sweep.size(fmt))
    yv, yg = sweep.evaluator("torch", function, fmt)(x)
    rng = np.random.default_rng(3)
    for kind, y in (("value", yv), ("grad", yg)):
        k = sweep._measure_kind("torch", function, kind, fmt, x, y, yv, yg, sweep._Oracle())
        pick = set(rng.choice(x.size, 150, replace=False).tolist()) | set(np.argsort(k.ulps)[-10:].tolist())
        pick |= set(np.flatnonzero(k.verdict == RANK["stable"])[:20].tolist())
        for i in sorted(pick):
            m = measure("torch", function, fmt, "cpu", {"input": [float(x[i])]}, [float(yv[i])], [float(yg[i])])
            e = {el.kind: el for el in m.elements}[kind]
            assert VERDICTS[k.verdict[i]] == e.verdict, (kind, x[i], y[i])
            assert (math.isnan(e.z_rounded) and math.isnan(k.zr[i])) or e.z_rounded == k.zr[i], (kind, x[i])
            if math.isfinite(e.ulp_error):
                assert abs(k.ulps[i] - e.ulp_error) <= 1e-6 * max(e.ulp_error, 1), (kind, x[i])
            else:
                assert math.isinf(k.ulps[i])


def _naive(function, fmt):
    """A known-bad float16 sigmoid: exp(x) / (1 + exp(x)) (NaN once exp(x) overflows, x > 11.1) and the
    derivative s (1 - s) (normwise stable: an absolute error of u), all in float16."""
    def run(x):
        a = x.astype(np.float16)
        with np.errstate(all="ignore"):
            s = np.exp(a) / (np.float16(1) + np.exp(a))
            return s.astype(np.float64), (s * (np.float16(1) - s)).astype(np.float64)
    return run


def test_a_known_bad_implementation_fails(monkeypatch):
    monkeypatch.setitem(sweep.SUBJECTS, "naive", sweep.SweepSubject("naive", ("float16",), _naive))
    row = sweep.run_local("sigmoid", "naive", "float16")
    v = row["quantities"]["value"]
    assert row["verdict"] == "broken"
    assert v["failures"] > 0 and v["witnesses"] and v["verdicts"]["broken"] >= 1000
    assert float.fromhex(v["witnesses"][0]["input"]) > 11 and v["max"]["ulp"] == math.inf


def _same_counts(a, b):
    for kind in a["quantities"]:
        qa, qb = a["quantities"][kind], b["quantities"][kind]
        assert qa["verdicts"] == qb["verdicts"] and qa["correctly_rounded"] == qb["correctly_rounded"]
        assert qa["max"]["ulp"] == qb["max"]["ulp"] and qa["max"]["input"] == qb["max"]["input"]
    assert a["verdict"] == b["verdict"]


def test_float32_on_a_two_worker_dask_cluster_resumes(tmp_path):
    pytest.importorskip("distributed", reason="the float32 sweep's Dask engine is not installed")
    lo, hi, chunk = 0x3F800000 - 3 * 2**13, 0x3F800000 + 2**13, 2**13  # around 1.0: four chunks
    folder = str(tmp_path / "chunks")
    calls = []
    row = sweep.run_dask("softplus", "torch", "float32", lo, hi, chunk=chunk, folder=folder, workers=2,
                         progress=lambda *a: calls.append(a))
    assert row["computed_inputs"] == hi - lo and calls[-1][:2] == (4, 4)
    _same_counts(row, sweep.run_local("softplus", "torch", "float32", lo, hi, chunk=chunk))
    files = sorted(os.listdir(os.path.join(folder, "softplus-torch-float32")))
    assert len(files) == 4
    # an interruption: one chunk lost, one left damaged; the rerun computes those two only
    os.unlink(os.path.join(folder, "softplus-torch-float32", files[0]))
    with open(os.path.join(folder, "softplus-torch-float32", files[1]), "w") as f:
        f.write('{"function": "softplus"')
    # resumed on an existing cluster (--scheduler ADDRESS): two in-process workers, quick to start
    import torch
    from distributed import LocalCluster

    threads = torch.get_num_threads()
    try:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
            again = sweep.run_dask("softplus", "torch", "float32", lo, hi, chunk=chunk, folder=folder,
                                   scheduler=cluster.scheduler_address)
    finally:
        torch.set_num_threads(threads)  # the chunks set one thread each, here in this process
    assert again["computed_inputs"] == 2 * chunk
    _same_counts(row, again)
    with open(os.path.join(folder, "softplus-torch-float32", files[1])) as f:
        assert json.load(f)["lo"] == lo + chunk


def test_merge_refuses_gaps():
    a = sweep.sweep_range("sigmoid", "numpy", "float16", 0, 10)
    b = sweep.sweep_range("sigmoid", "numpy", "float16", 20, 30)
    with pytest.raises(ValueError, match="not adjacent"):
        sweep.merge_rows([a, b])


def _plus_one_above_20(function, fmt):
    """A softplus that is exact in float16 except above 20, where it returns x + 1."""
    def run(x):
        from subjects import numpy_losses

        a = x.astype(np.float16)
        v = np.asarray(numpy_losses.softplus(a)).astype(np.float64)
        g = np.asarray(numpy_losses.grad("softplus", a)).astype(np.float64)
        return np.where(x > 20, x + 1, v), g
    return run


def test_a_deviation_excuses_only_what_it_describes(monkeypatch):
    """A documented deviation (torch's softplus threshold, given to a test subject) covers the elements above 20
    but its documented behaviour (x itself) is not x + 1: nothing is explained, every such element fails."""
    import dataclasses

    from subjects import deviations

    (dev,) = [d for d in deviations.DEVIATIONS if d.id == "torch-softplus-threshold"]
    monkeypatch.setattr(deviations, "DEVIATIONS", [dataclasses.replace(dev, subject="odd")])
    monkeypatch.setitem(sweep.SUBJECTS, "odd", sweep.SweepSubject("odd", ("float16",), _plus_one_above_20))
    row = sweep.run_local("softplus", "odd", "float16")
    v = row["quantities"]["value"]
    above = int((sweep.inputs("float16", 0, 2**16) > 20).sum())
    assert v["failures"] > 0 and not v["explained"] and row["verdict"] in ("unstable", "broken")
    assert v["failures"] <= above and row["quantities"]["grad"]["failures"] == 0
