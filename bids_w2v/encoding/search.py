"""Local search of each voxel's best alpha on the grid, started from a cheap proxy's minima.

Evaluating an exact cross-validation criterion (leave-one-out or inner K-fold) costs one
``(n_train x r) @ (r x n_voxels)`` product per alpha, and these products are nearly the whole
cost of the fit. The generalised cross-validation (GCV) criterion, computed for every alpha at
once from ``Z = U^T Y`` in ``O(n_alphas * r * n_voxels)``, tracks leave-one-out closely, so the
exact criterion is only needed near the GCV minima:

1. the starts of a voxel are its GCV argmin and any other local minimum of GCV within
   :data:`START_TOL` of it (some voxels have two nearly equal GCV minima, and the exact
   minimum can be in either basin);
2. the exact criterion is evaluated at every start and its two neighbours;
3. while the best evaluated alpha of a voxel has a neighbour on the grid that was not
   evaluated, that neighbour is evaluated (the search walks downhill);
4. the first minimum of the evaluated alphas is returned.

The result is the lowest evaluated value and a local minimum of the exact criterion on the
grid (both neighbours evaluated), reached by descent from the GCV minima: the exact grid
argmin unless the criterion has a lower minimum in a basin where GCV has none.
``alpha_search="full"`` evaluates every alpha and is exact by construction. How often the two
differ is checked by the tests (``tests/encoding/test_search.py``: parity with the full grid,
scikit-learn and himalaya) and measured by ``benchmarks/encoding.py --alpha-search local,full``
(figures in ``benchmarks/README.md``): the agreement is better for ``loo`` than for ``kfold``,
whose proxy can miss minima when there are more features than scans and the noise is
autocorrelated, which is why ``alpha_search="auto"`` uses the local search for ``loo`` only.
The default remains ``"full"``: on the demo's features the local search changed a few brain
scores, enough to swap two nearly tied layers.

Each round evaluates every alpha needed by some voxel once, on the gathered columns of the
voxels that need it: about 3 products per voxel instead of ``n_alphas``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Local minima of GCV within this relative distance of its minimum start a descent too
#: (bimodal criteria: the second GCV minimum of a voxel can be nearly as low as the first, and
#: the exact minimum may sit in either basin; see benchmarks/README.md).
START_TOL = 1e-2

#: ``evaluate(alpha_index, columns) -> criterion`` (float64, lower is better) for the voxels at
#: ``columns`` (positions in the chunk being searched).
Evaluate = Callable[[int, np.ndarray], np.ndarray]


def local_search(evaluate: Evaluate, starts: np.ndarray) -> np.ndarray:
    """Index of the best alpha per voxel by descent from the ``starts`` of each voxel.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(a, cols)`` returns the exact criterion (lower is better) of alpha index
        ``a`` for the voxels ``cols`` (int array), as a float64 array of ``len(cols)``.
    starts : ndarray of bool, shape (n_alphas, n_voxels)
        Starting alphas of each voxel (the proxy's local minima); at least one per voxel.

    Returns
    -------
    ndarray of int, shape (n_voxels,)
        First minimum of the evaluated alphas of each voxel, which is a local minimum of the
        exact criterion on the grid (both its neighbours were evaluated).
    """
    starts = np.asarray(starts, dtype=bool)
    n_alphas = starts.shape[0]
    crit = np.full(starts.shape, np.inf)
    done = np.zeros(starts.shape, dtype=bool)
    need = starts.copy()
    need[1:] |= starts[:-1]
    need[:-1] |= starts[1:]
    while need.any():
        for a in np.flatnonzero(need.any(1)):
            cols = np.flatnonzero(need[a])
            crit[a, cols] = evaluate(int(a), cols)
        done |= need
        best = crit.argmin(0)  # first minimum, like sklearn's and himalaya's argmin/argmax
        need[:] = False
        cols = np.arange(best.size)
        left, right = best - 1, best + 1
        ok = left >= 0
        need[left[ok], cols[ok]] = True
        ok = right < n_alphas
        need[right[ok], cols[ok]] = True
        need &= ~done
    return crit.argmin(0)


def gcv_start(ops, s, alphas, Yc, Z, tol: float = START_TOL) -> np.ndarray:
    """Local minima of GCV within ``tol`` of its minimum: the starts of the local search.

    ``GCV(a) = RSS(a) / (1 - df(a) / n)^2`` with ``RSS(a) = ||Y_perp||^2 + sum_k
    (a / (s_k^2 + a))^2 Z_k^2`` and ``df(a) = 1 + sum_k s_k^2 / (s_k^2 + a)``, for all alphas
    in one ``(n_alphas, r) @ (r, n_voxels)`` product, in float64.

    Parameters
    ----------
    ops : NumpyOps or TorchOps
        Array backend of the arrays below.
    s : array (r,)
        Singular values of the centred training features (float64).
    alphas : array (n_alphas,)
        The grid (float64).
    Yc : array (n, n_voxels)
        Centred training targets.
    Z : array (r, n_voxels)
        ``U^T Yc``.

    tol : float
        Relative tolerance: local minima of GCV above ``(1 + tol) * min GCV`` are not starts.

    Returns
    -------
    ndarray of bool, shape (n_alphas, n_voxels)
        The global GCV minimum of each voxel and its other local minima within ``tol``.
    """
    n = Yc.shape[0]
    z = Z * Z
    perp = ops.sum0(Yc * Yc) - ops.sum0(z)  # float64 sums
    perp = ops.where(perp > 0, perp, 0.0 * perp)
    gc = alphas[:, None] / (s[None, :] ** 2 + alphas[:, None])
    # the shrunk part in the working dtype (accurate relative to itself), summed in float64
    rss = perp[None, :] + ops.to_high(ops.to_work(gc * gc) @ z)
    df = 1.0 + (1.0 - gc).sum(1)
    denom = 1.0 - df / n
    denom = ops.where(denom > 1e-6, denom, 1e-6 + 0.0 * denom) ** 2
    return proxy_starts(ops.to_numpy(rss / denom[:, None]), tol)


def proxy_starts(proxy: np.ndarray, tol: float = START_TOL) -> np.ndarray:
    """Starts of the local search from a proxy criterion table (lower is better).

    Parameters
    ----------
    proxy : ndarray of shape (n_alphas, n_voxels)
        The proxy (GCV, or the diagonal approximation of inner K-fold) for every alpha.
    tol : float
        Relative tolerance: local minima above ``(1 + tol) * min`` are not starts.

    Returns
    -------
    ndarray of bool, shape (n_alphas, n_voxels)
        The proxy's argmin of each voxel and its other local minima within ``tol``.
    """
    lower = np.full(proxy.shape, True)
    lower[1:] = proxy[1:] < proxy[:-1]
    lower[:-1] &= proxy[:-1] <= proxy[1:]
    lower &= proxy <= proxy.min(0) + tol * np.abs(proxy.min(0))
    lower[proxy.argmin(0), np.arange(proxy.shape[1])] = True
    return lower
