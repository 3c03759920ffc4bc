"""How a user's function is called: torch's keyword names, or positionally for a function whose parameters are
named otherwise (scipy.special.log_softmax(x, axis)); found by checking SciPy's function as a user would (every
cell was inconclusive: the input was dropped as a parameter the function does not take)."""

from __future__ import annotations

import numpy as np
import scipy.special

from subjects.user import UserSubject, accepted_parameters, adapt


def test_a_first_parameter_named_otherwise_takes_the_input():
    params = accepted_parameters(scipy.special.log_softmax)
    assert "input" in params and "axis" in params and "target" not in params
    fn = adapt(UserSubject("log_softmax", "scipy.special:log_softmax", "numpy", scipy.special.log_softmax, params))
    out = fn(input=np.array([0.0, 0.0]))
    assert np.allclose(out, np.log([0.5, 0.5]))


def test_a_required_second_parameter_takes_the_target():
    def loss(logits, labels, reduction="mean"):
        return logits, labels, reduction

    params = accepted_parameters(loss)
    assert {"input", "target", "reduction"} <= params
    fn = adapt(UserSubject("cross_entropy", "t:loss", "torch", loss, params))
    assert fn(input=1, target=2, reduction="sum") == (1, 2, "sum")


def test_torch_names_are_kept_as_they_are():
    def loss(input, target, weight=None):
        return input

    assert accepted_parameters(loss) == frozenset({"input", "target", "weight"})


# ---- which framework's arrays a function is called with, where the user did not say (infer_framework)

def _np_softplus(input):
    return np.logaddexp(0.0, input)


def _np_helper(x):
    return np.log1p(np.exp(-np.abs(x)))


def _np_softplus_by_helper(input):
    return np.maximum(input, 0) + _np_helper(input)


def _torch_with_numpy_constant(input):
    import torch
    return torch.nn.functional.softplus(input) * np.float32(1.0)


def _methods_only(input):
    return input.exp().log1p()


def test_the_framework_is_the_one_its_code_uses():
    import jax.nn
    import torch.nn.functional as F

    from subjects.user import infer_framework

    def closure_over_numpy():
        log1p = np.log1p
        return lambda input: log1p(input)

    got = {name: infer_framework(fn)[0] for name, fn in {
        "numpy": _np_softplus, "numpy through a helper of its module": _np_softplus_by_helper,
        "numpy in a closure": closure_over_numpy(), "torch beside a NumPy constant": _torch_with_numpy_constant,
        "scipy's own": scipy.special.log_softmax, "torch's own": F.softplus, "JAX's own": jax.nn.softplus,
        "a JAX lambda": lambda input: jax.nn.log_sigmoid(input), "methods only": _methods_only}.items()}
    assert got == {"numpy": "numpy", "numpy through a helper of its module": "numpy", "numpy in a closure": "numpy",
                   "torch beside a NumPy constant": "torch", "scipy's own": "numpy", "torch's own": "torch",
                   "JAX's own": "jax", "a JAX lambda": "jax", "methods only": "torch"}, got
    assert infer_framework(_methods_only)[1] == "the default: its code names no framework"
    assert infer_framework(_np_softplus)[1] == "inferred: its code uses numpy"


def test_a_library_function_read_through_its_modules_is_followed(tmp_path, monkeypatch):
    """A user's adapter of a library's loss (``kornia.losses.focal_loss(...)``, ``tmf.kl_divergence(...)``) names
    no framework itself: the library's function, read through its modules, is followed like a helper, and the
    title line says which function decided. A NumPy library's function was called with torch tensors before."""
    import importlib

    from subjects.user import infer_framework

    lib = tmp_path / "fakelib_numpy"
    lib.mkdir()
    (lib / "__init__.py").write_text("from . import losses\n")
    (lib / "losses.py").write_text("import numpy as np\n\ndef logaddexp0(x):\n    return np.logaddexp(0.0, x)\n")
    (tmp_path / "fakelib_user.py").write_text(
        "import fakelib_numpy\nimport fakelib_numpy as fl\n\n"
        "def softplus(input):\n    return fakelib_numpy.losses.logaddexp0(input)\n\n"
        "def aliased(input):\n    return fl.losses.logaddexp0(input)\n\n"
        "def with_torch(input):\n    import torch\n    return torch.as_tensor(fl.losses.logaddexp0(input))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    user = importlib.import_module("fakelib_user")
    assert infer_framework(user.softplus) == (
        "numpy", "inferred: it calls fakelib_numpy.losses.logaddexp0, which uses numpy")
    assert infer_framework(user.aliased)[0] == "numpy"
    # its own code names torch: that decides, and says so
    assert infer_framework(user.with_torch) == ("torch", "inferred: its code uses torch (and numpy)")


def test_an_nn_module_is_called_with_the_parameters_of_its_forward():
    """A loss class (timm's, kornia's, a user's own nn.Module): its __call__ takes (*args, **kwargs), which made it
    seem to take every keyword; it raised on each call ("forward() got an unexpected keyword argument 'weight'")
    and came out inconclusive, and the title said "a function of torch". Its forward's parameters decide now, and
    its forward's code the framework."""
    import torch

    from subjects.user import infer_framework

    class CE(torch.nn.Module):
        def forward(self, x, target):
            return torch.nn.functional.cross_entropy(x, target)

    class Kw(torch.nn.Module):
        def __call__(self, input, target, reduction="mean"):  # a __call__ of its own decides
            return torch.nn.functional.cross_entropy(input, target, reduction=reduction)

    ce = CE()
    assert accepted_parameters(ce) == frozenset({"input", "target", "x"})
    assert accepted_parameters(Kw()) == frozenset({"input", "target", "reduction"})
    assert infer_framework(ce) == ("torch", "inferred: its code uses torch")
    findings = lossproof_check("cross_entropy", ce, formats=["float32"], properties=["agreement"])
    assert findings.ok and findings.cells[0].measured, findings.table()


def test_a_cross_entropy_of_probability_targets_only_is_measured_on_those_and_the_rest_not_supported():
    """timm's SoftTargetCrossEntropy (probability targets, the classes last): given class indices it broadcasts
    them against the log-probabilities and returns 0 for two equal logits, which read as a wrong result of the
    function rather than a convention. ``targets="probability"`` (``--targets probability``) measures it on
    probability targets only and reports class indices as not supported; an unknown kind or a loss with one kind
    of target is a one-line error."""
    import pytest
    import torch

    from subjects.user import SubjectError, load

    class SoftTargetCrossEntropy(torch.nn.Module):
        def forward(self, x, target):
            return torch.sum(-target * torch.nn.functional.log_softmax(x, dim=-1), dim=-1).mean()

    fn = SoftTargetCrossEntropy()
    findings = lossproof_check("cross_entropy", fn, formats=["float32"], properties=["agreement"], class_axis=-1,
                               targets="probability")
    assert findings.ok and findings.cells[0].measured, findings.table()
    assert list(findings.cells[0].not_supported) == ["class-index targets"], findings.table()
    assert "(not supported: class-index targets)" in findings.table(), findings.table()
    told = lossproof_check("cross_entropy", fn, formats=["float32"], properties=["agreement"], class_axis=-1)
    assert not told.ok, told.table()  # given class indices too, it is wrong on them
    for kind, loss, message in (("soft", "cross_entropy", "targets 'soft': expected one of index, probability"),
                                ("index", "softplus", "softplus takes no targets"),
                                ("probability", "nll_loss", "nll_loss takes index targets")):
        with pytest.raises(SubjectError, match=message):
            load(f"{loss}=examples/user_losses.py:careful_softplus", "torch", 1, None, kind)


def lossproof_check(*args, **kwargs):
    import lossproof
    return lossproof.check(*args, **kwargs)


def test_a_numpy_function_is_checked_with_numpy_arrays_unless_told_otherwise():
    """A NumPy function checked without a framework was called with torch tensors, raised on every input ("Can't
    call numpy() on Tensor that requires grad") and came out inconclusive, which reads as its own failure (a
    user's trial, 2026-12-07); it is now measured, and an explicit framework still decides."""
    import lossproof

    findings = lossproof.check("softplus", _np_softplus, formats=["float32"], properties=["agreement"])
    assert findings.ok and [c.status for c in findings.cells] == ["passed"], findings.table()
    assert findings.cells[0].measured, findings.table()
    told = lossproof.check("softplus", _np_softplus, framework="torch", formats=["float32"],
                           properties=["agreement"])
    assert [c.status for c in told.cells] == ["inconclusive"], told.table()
    assert "it was called with torch tensors: --framework torch|numpy|jax chooses" in told.table(), told.table()
