"""The catalogue of the losses lossproof checks: one table that the subjects, the strategies, the command line, the
engine and the reports read, so adding a loss or a framework touches one row.

Each row says what the loss is called, which oracle gives its exact value (``oracles.REGISTRY``), which functions
implement it in each framework (dotted names, imported only by the subjects that run them), which of its
keyword arguments are floating-point tensors in the format under test, what kind of target it takes, whether and
how it reduces, which Hypothesis strategy draws its inputs (``lossproof.problems``), the capabilities a function
may lack and the sample calls that probe them, and the conventions lossproof assumes when it calls a user's
function (printed beside a "wrong result", where a convention is the likeliest culprit).

This module is pure Python: no framework, no Hypothesis (the reports import it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Loss", "LOSSES", "NAMES", "FORMATS", "DEVICES", "FLOAT_TENSORS", "get", "is_index_target", "REDUCING"]

#: the formats, in the order every table shows them
FORMATS = ("float64", "float32", "float16", "bfloat16")

#: the devices a framework subject runs on (CUDA skipped, with the reason, where absent)
DEVICES = ("cpu", "cuda")

#: keyword arguments that are floating-point tensors whatever the loss (``target`` depends on the loss: ``Loss.target``)
FLOAT_TENSORS = ("input", "other", "weight", "pos_weight")


@dataclass(frozen=True)
class Loss:
    name: str
    family: str  # "row" (softmax family), "elementwise", "pairwise", "class", "binary", "kl"
    torch: str  # the dotted name of torch's function
    params: tuple  # the keyword arguments torch's function takes, in its order
    target: str | None = None  # None, "index", "index or probability", "float"
    reductions: tuple = ()  # the reductions it takes (torch's default first); () for an unreduced function
    scipy: str | None = None  # the SciPy counterpart (subjects/array_subject.py), where one exists
    #: the JAX counterparts (subjects/jax_subject.py), dotted names, where they exist: jax.nn, jax.scipy, optax
    jax: tuple = ()
    strategy: str = "elementwise"  # lossproof.problems draws its inputs with this recipe
    probes: dict = field(default_factory=dict)  # capability -> a small exact call that needs it
    conventions: str = ""  # what lossproof assumes when it calls a user's function
    sample: dict = field(default_factory=dict)  # a small typical call

    @property
    def reduces(self) -> bool:
        return bool(self.reductions)

    @property
    def default_reduction(self) -> str | None:
        return self.reductions[0] if self.reductions else None

    @property
    def torch_top_level(self) -> bool:
        """torch.X rather than torch.nn.functional.X (reproducers name it so)."""
        return not self.torch.startswith("torch.nn.functional.")

    @property
    def torch_short(self) -> str:
        """``F.cross_entropy`` or ``torch.logsumexp``: how reproducers spell the function."""
        return self.torch.replace("torch.nn.functional.", "F.")

    def float_keys(self, kwargs: dict) -> tuple:
        """The keyword arguments of this call that are floating-point tensors in the format under test."""
        keys = [k for k in FLOAT_TENSORS if k in kwargs]
        if "target" in kwargs and not is_index_target(self.name, kwargs):
            keys.append("target")
        return tuple(keys)


_CLASS_CONVENTIONS = ("input of shape (C), (N, C) or (N, C, d1, ...) with the classes on axis 1 (axis 0 for (C)); "
                      "class-index targets of shape (), (N) or (N, d1, ...) as int64 (probability targets shaped "
                      "like the input, for cross_entropy); ignore_index -100; reduction 'mean' over the targets not "
                      "ignored, weighted by the class weights")
_ROW_CONVENTIONS = "over dim (torch's implicit dim when None: 0 for 0-, 1- and 3-d inputs, else 1)"

LOSSES = (
    Loss("cross_entropy", "class", "torch.nn.functional.cross_entropy",
         ("input", "target", "weight", "size_average", "ignore_index", "reduce", "reduction", "label_smoothing"),
         target="index or probability", reductions=("mean", "none", "sum"),
         jax=("optax.losses.softmax_cross_entropy_with_integer_labels", "optax.losses.softmax_cross_entropy"),
         strategy="class",
         probes={"probability targets": {"input": [[0.0, 1.0], [0.5, -1.0]], "target": [[0.25, 0.75], [1.0, 0.0]]},
                 "class-index targets": {"input": [[0.0, 1.0], [0.5, -1.0]], "target": [1, 0]}},
         conventions=_CLASS_CONVENTIONS + "; label_smoothing 0",
         sample={"input": [[0.0, 1.0, -1.0], [2.0, 0.5, 0.0]], "target": [1, 0]}),
    Loss("nll_loss", "class", "torch.nn.functional.nll_loss",
         ("input", "target", "weight", "size_average", "ignore_index", "reduce", "reduction"),
         target="index", reductions=("mean", "none", "sum"), strategy="class_index",
         conventions=_CLASS_CONVENTIONS + "; the input holds log-probabilities",
         sample={"input": [[-1.0, -0.5, -2.0], [-0.25, -1.5, -3.0]], "target": [1, 0]}),
    Loss("log_softmax", "row", "torch.nn.functional.log_softmax", ("input", "dim"), scipy="log_softmax",
         jax=("jax.nn.log_softmax",),
         strategy="row",
         conventions=_ROW_CONVENTIONS, sample={"input": [[0.0, 1.0, -1.0]], "dim": 1}),
    Loss("softmax", "row", "torch.nn.functional.softmax", ("input", "dim"), scipy="softmax", jax=("jax.nn.softmax",),
         strategy="row",
         conventions=_ROW_CONVENTIONS, sample={"input": [[0.0, 1.0, -1.0]], "dim": 1}),
    Loss("logsumexp", "row", "torch.logsumexp", ("input", "dim", "keepdim"), scipy="logsumexp",
         jax=("jax.nn.logsumexp",),
         strategy="row",
         conventions="over dim (every dimension when None: torch requires a dim, lossproof passes all of them)",
         sample={"input": [[0.0, 1.0, -1.0]], "dim": 1}),
    Loss("binary_cross_entropy", "binary", "torch.nn.functional.binary_cross_entropy",
         ("input", "target", "weight", "size_average", "reduce", "reduction"),
         target="float", reductions=("mean", "none", "sum"), strategy="binary_probabilities",
         conventions="input and target probabilities of the same shape; weight broadcast to it; reduction 'mean' "
                     "over every element",
         sample={"input": [0.25, 0.5, 0.875], "target": [0.0, 1.0, 0.5]}),
    Loss("binary_cross_entropy_with_logits", "binary", "torch.nn.functional.binary_cross_entropy_with_logits",
         ("input", "target", "weight", "size_average", "reduce", "reduction", "pos_weight"),
         target="float", reductions=("mean", "none", "sum"),
         jax=("optax.losses.sigmoid_binary_cross_entropy",),
         strategy="binary_logits",
         conventions="logits and target probabilities of the same shape; weight broadcast to it; pos_weight along "
                     "the last axis; reduction 'mean' over every element",
         sample={"input": [-1.0, 0.5, 2.0], "target": [0.0, 1.0, 0.5]}),
    Loss("kl_div", "kl", "torch.nn.functional.kl_div",
         ("input", "target", "size_average", "reduce", "reduction", "log_target"),
         target="float", reductions=("mean", "none", "sum", "batchmean"), scipy="rel_entr",
         jax=("optax.losses.kl_divergence", "optax.losses.kl_divergence_with_log_targets"),
         strategy="kl",
         conventions="kl_div(input, target): the input holds log-probabilities (log Q), the target probabilities "
                     "(P; log-probabilities with log_target=True); pointwise target * (log target - input); "
                     "reduction 'mean' over every element, 'batchmean' over the first axis",
         sample={"input": [[-0.5, -1.0]], "target": [[0.25, 0.75]], "reduction": "batchmean"}),
    Loss("sigmoid", "elementwise", "torch.sigmoid", ("input",), scipy="expit", jax=("jax.nn.sigmoid",),
         strategy="elementwise",
         conventions="elementwise", sample={"input": [-1.0, 0.0, 2.0]}),
    Loss("logsigmoid", "elementwise", "torch.nn.functional.logsigmoid", ("input",), scipy="log_expit",
         jax=("jax.nn.log_sigmoid",),
         strategy="elementwise", conventions="elementwise", sample={"input": [-1.0, 0.0, 2.0]}),
    Loss("softplus", "elementwise", "torch.nn.functional.softplus", ("input", "beta", "threshold"),
         jax=("jax.nn.softplus",),
         strategy="elementwise",
         conventions="elementwise, beta 1; torch's threshold 20 is a documented behaviour, not the function",
         sample={"input": [-1.0, 0.0, 2.0]}),
    Loss("xlogy", "pairwise", "torch.xlogy", ("input", "other"), scipy="xlogy",
         jax=("jax.scipy.special.xlogy",),
         strategy="elementwise",
         conventions="xlogy(input, other) = input * log(other), 0 where input is 0",
         sample={"input": [0.0, 0.5, 2.0], "other": [0.0, 0.25, 3.0]}),
)

NAMES = tuple(loss.name for loss in LOSSES)
_BY_NAME = {loss.name: loss for loss in LOSSES}
REDUCING = tuple(loss.name for loss in LOSSES if loss.reduces)


def get(name: str) -> Loss:
    """The catalogue row of ``name``; KeyError with the known names otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown loss {name!r}; expected one of {', '.join(NAMES)}") from None


def _shape(v: object) -> tuple:
    shape = []
    while isinstance(v, (list, tuple)):
        shape.append(len(v))
        v = v[0] if v else None
    return tuple(shape)


def is_index_target(name: str, kwargs: dict) -> bool:
    """Whether the call's ``target`` holds class indices (nll_loss always; cross_entropy unless the target is
    shaped like the input, torch's rule for probability targets)."""
    kind = _BY_NAME[name].target if name in _BY_NAME else None
    if kind == "index":
        return True
    if kind == "index or probability":
        return _shape(kwargs.get("target")) != _shape(kwargs.get("input"))
    return False
