"""A user's function that takes ``**kwargs`` and ignores some of the loss's parameters (``cases.ignored_parameters``):
found checking Hugging Face's ``fixed_cross_entropy(source, target, num_items_in_batch=None, ignore_index=-100,
**kwargs)``, which swallows label_smoothing, weight and reduction. lossproof passed them, and every difference read
as the function's wrong result. Now a parameter with which the function returns the same numbers where the exact
result changes is not passed, the exact result keeps torch's default, and it is reported as not supported."""

from __future__ import annotations

import torch.nn.functional as F

import lossproof
from lossproof.cases import restrict, unsupported, user_cases
from lossproof.judge import conventions
from subjects.user import UserSubject, accepted_parameters


def swallowing_ce(source, target, ignore_index=-100, **kwargs):
    """As transformers' fixed_cross_entropy: the mean, whatever reduction, weight or label_smoothing it is given."""
    return F.cross_entropy(source, target, ignore_index=ignore_index)


def forwarding_ce(input, target, **kwargs):
    """Every parameter passed on to torch's: none ignored."""
    return F.cross_entropy(input, target, **kwargs)


def refusing_ce(input, target, **kwargs):
    """Raises on a parameter it does not implement: a refusal, not an ignored parameter."""
    if kwargs.get("label_smoothing", 0.0):
        raise ValueError("label smoothing is not implemented")
    return F.cross_entropy(input, target, **{k: v for k, v in kwargs.items() if k != "label_smoothing"})


def _case(fn):
    user = UserSubject("cross_entropy", f"t:{fn.__name__}", "torch", fn, accepted_parameters(fn))
    return next(c for c in user_cases(user, False) if c.fmt == "float32" and c.device == "cpu")


def test_the_parameters_a_function_swallows_are_found_and_not_passed():
    case = _case(swallowing_ce)
    assert accepted_parameters(swallowing_ce) is None  # **kwargs: it seems to take everything
    assert sorted(case.ignored()) == ["label_smoothing", "reduction", "weight"], case.ignored()
    drawn = {"input": [[0.0, 1.0]], "target": [1], "reduction": "sum", "label_smoothing": 0.5,
             "weight": [1.0, 2.0], "ignore_index": 0}
    assert restrict(case, drawn) == {"input": [[0.0, 1.0]], "target": [1], "ignore_index": 0}
    missing = unsupported(case)
    assert missing["label_smoothing (ignored)"].startswith("t:swallowing_ce takes **kwargs and ignores "
                                                           "label_smoothing (the same result with "
                                                           "label_smoothing=0.25, where the exact one changes)")
    assert "it ignores weight, label_smoothing (taken through **kwargs)" in conventions(case, drawn)


def test_a_function_that_passes_its_kwargs_on_or_refuses_ignores_nothing():
    assert _case(forwarding_ce).ignored() == {}
    assert _case(refusing_ce).ignored() == {}  # it raises: the search counts those refusals


def test_a_check_of_the_swallowing_function_measures_it_at_torchs_defaults():
    findings = lossproof.check("cross_entropy", swallowing_ce, formats=["float32"], properties=["agreement"])
    assert findings.ok, findings.table()
    (cell,) = findings.cells
    assert cell.measured > 0 and {"label_smoothing (ignored)", "weight (ignored)",
                                  "reduction (ignored)"} <= set(cell.not_supported), cell


def test_a_parameter_declared_built_in_is_not_also_reported_ignored():
    def smoothing_ce(input, target, **kwargs):
        return F.cross_entropy(input, target, label_smoothing=0.25)

    plain = UserSubject("cross_entropy", "t:smoothing_ce", "torch", smoothing_ce, None)
    fixed = UserSubject("cross_entropy", "t:smoothing_ce", "torch", smoothing_ce, None,
                        fixed={"label_smoothing": 0.25})
    ignored = [next(iter(user_cases(u, False))).ignored() for u in (plain, fixed)]
    assert "label_smoothing" in ignored[0] and "label_smoothing" not in ignored[1], ignored
    assert "weight" in ignored[1]


def test_a_probability_target_function_is_probed_with_probability_targets():
    """--targets probability: the catalogue's sample (class indices) is refused, so nothing was ever found ignored
    for the soft-target cross-entropies (optax's, timm's) this probe is for."""
    def soft_ce(input, target, **kwargs):
        return -(target * F.log_softmax(input, dim=1)).sum(dim=1).mean()

    user = UserSubject("cross_entropy", "t:soft_ce", "torch", soft_ce, None, targets="probability")
    ignored = next(iter(user_cases(user, False))).ignored()
    assert sorted(ignored) == ["label_smoothing", "reduction", "weight"], ignored  # ignore_index: no effect there


def test_an_ignored_parameter_that_may_be_built_in_names_fixed():
    def smoothing_ce(input, target, **kwargs):
        return F.cross_entropy(input, target, label_smoothing=0.25)

    case = _case(smoothing_ce)
    text = conventions(case, {"input": [[0.0, 1.0]], "target": [1]})
    assert "it ignores weight, ignore_index, label_smoothing (taken through **kwargs): torch's defaults assumed " \
           "(--fixed NAME=VALUE for one it has built in: ignore_index or label_smoothing)" in text, text
