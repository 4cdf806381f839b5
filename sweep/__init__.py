"""sweep: learning-rate and schedule sweeps for Keras, seeded by an LR range test."""

__version__ = "0.1.0"
