"""lossproof: numerical-stability verification of machine-learning loss functions against exact, correctly rounded
oracles.

    import lossproof
    findings = lossproof.check("cross_entropy", my_cross_entropy)        # the battery, in process
    lossproof.assert_stable("softplus", my_softplus, formats=["float32"]) # raises with the findings table
    fn = lossproof.load_function("path/to/losses.py:my_softplus")       # what reproducers import

The engine (strategies, edge problems, the search and its budgets, measurement and verdicts) lives in the
modules of this package; the exact oracle is ``oracles``, the subjects ``subjects``, the reports ``reports``.
This module imports nothing heavy: the public names load their modules when first used.
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

#: public name -> the module that defines it (loaded on first use: ``import lossproof`` stays instant)
_PUBLIC = {"check": "lossproof.api", "assert_stable": "lossproof.api", "Findings": "lossproof.api",
           "Finding": "lossproof.api", "load_function": "subjects.user", "strategies": "lossproof.strategies"}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name):
    if name in _PUBLIC:
        module = importlib.import_module(_PUBLIC[name])
        value = module if name == "strategies" else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lossproof' has no attribute {name!r}")
