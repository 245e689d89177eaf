"""PCA of the features fitted inside a training fold (``--features-pca``).

The principal axes are those of the standardised training features only; the test features are
projected on them, never used to find them (as ``sklearn.pipeline.Pipeline(StandardScaler(),
PCA(n), Ridge())`` fitted on the training fold). The axes come from the same float64
eigendecomposition as the ridge basis (:func:`bids_w2v.encoding.basis.svd_basis`), on numpy or
torch (CPU or CUDA). The projected features are not re-standardised, as in that pipeline: the
components keep their variances, so the ridge penalty shrinks the weak ones most.
"""

from __future__ import annotations

import numpy as np

from .backends import Array, Ops
from .basis import svd_basis

__all__ = ["check_n_components", "pca_project"]


def check_n_components(n_components: int | None, n_train: int, n_features: int) -> int | None:
    """Validate ``n_components`` against the smallest training fold and the feature count.

    Parameters
    ----------
    n_components : int or None
        Number of principal components to keep (``None``: no PCA).
    n_train : int
        Number of samples in the smallest training fold.
    n_features : int
        Number of features.

    Returns
    -------
    int or None
        ``n_components`` as an int.

    Raises
    ------
    ValueError
        If it is not a positive integer or exceeds ``min(n_train - 1, n_features)`` (centred
        training features have at most that many non-zero principal components).
    """
    if n_components is None:
        return None
    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)):
        raise ValueError(f"features_pca must be a positive integer, got {n_components!r}.")
    limit = min(n_train - 1, n_features)
    if not 1 <= n_components <= limit:
        raise ValueError(
            f"features_pca={n_components} principal components were requested, but the "
            f"features have {n_features} columns and the smallest training fold {n_train} "
            f"samples, so at most {limit} components exist."
        )
    return int(n_components)


def pca_project(ops: Ops, Xtr: Array, Xte: Array, n_components: int) -> tuple[Array, Array]:
    """Project centred training features and the test features on the top principal axes.

    Parameters
    ----------
    ops : NumpyOps or TorchOps
        Array backend.
    Xtr : array of shape (n_train, n_features)
        Standardised (centred) training features, float64.
    Xte : array of shape (n_test, n_features)
        Test features, standardised with the training mean and scale, float64.
    n_components : int
        Number of components kept (largest variance first).

    Returns
    -------
    (array, array)
        ``Xtr @ W`` and ``Xte @ W`` with ``W`` (n_features, n_components) the principal axes
        of ``Xtr`` alone. When ``Xtr`` has fewer non-null principal axes than
        ``n_components`` (its numerical rank), only those are kept: the others would be zero
        columns, which do not change a ridge fit.
    """
    basis = svd_basis(ops, Xtr)
    order = ops.index(np.argsort(-ops.to_numpy(basis.s), kind="stable")[:n_components])
    W = basis.Vt[order].T  # (p, k)
    return Xtr @ W, Xte @ W
