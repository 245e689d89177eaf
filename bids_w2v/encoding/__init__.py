"""Encoding engine: cross-validated ridge regression from features to voxels ("brain scores").

Pure numpy/torch; see :func:`cross_validated_scores`.
"""

from __future__ import annotations

from .folds import apply_gap, contiguous_folds, group_folds, make_folds
from .ridge import DEFAULT_ALPHAS, EncodingResult, cross_validated_scores

__all__ = [
    "DEFAULT_ALPHAS",
    "EncodingResult",
    "apply_gap",
    "contiguous_folds",
    "cross_validated_scores",
    "group_folds",
    "make_folds",
]
