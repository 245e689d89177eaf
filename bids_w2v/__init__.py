"""bids-w2v: brain scores of self-supervised speech models on naturalistic-listening fMRI."""

__version__ = "0.1.0"
