"""lossproof: numerical-stability verification of machine-learning loss functions."""

__version__ = "0.1.0"
