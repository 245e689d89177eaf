"""Model vs human accuracy per contrast, and the native-language effect (Millet et al. 2022).

The human results are a TSV with one row per triplet or per contrast and the columns
``phone_a``, ``phone_b`` and ``accuracy`` (proportion right, or 0/1 per triplet), and
optionally ``native`` (1/true when the contrast belongs to the listeners' native language).
Contrasts are unordered: rows of ``(a, b)`` and ``(b, a)`` are the same contrast, and the model's
accuracy on a contrast is one minus its mean ABX error over both orders.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from bids_w2v.errors import InputError

__all__ = ["compare_with_humans", "model_contrast_accuracy", "read_human_results"]

_TRUE = {"1", "true", "yes", "y", "t", "native"}
_FALSE = {"0", "false", "no", "n", "f", "nonnative", "non-native"}


def _contrast(a: pd.Series, b: pd.Series) -> pd.Series:
    return pd.Series([" ".join(sorted(p)) for p in zip(a, b, strict=True)], index=a.index)


def read_human_results(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Human accuracy per unordered contrast.

    Returns
    -------
    pandas.DataFrame
        ``contrast`` (``"a b"``, sorted), ``human_accuracy``, ``n_rows`` and, when given,
        ``native`` (bool).

    Raises
    ------
    InputError
        If the file is unreadable, lacks a column, has accuracies outside [0, 1], or gives a
        contrast both native and non-native.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path, sep="\t", dtype={"phone_a": str, "phone_b": str})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(
            f"The human results '{path}' cannot be read as a TSV ({exc}). Give a tab-separated "
            "file with the columns phone_a, phone_b, accuracy (and optionally native)."
        ) from exc
    missing = [c for c in ("phone_a", "phone_b", "accuracy") if c not in table.columns]
    if missing:
        raise InputError(
            f"The human results '{path}' lack the column(s) {missing}; it has "
            f"{list(table.columns)}. Give phone_a, phone_b, accuracy (and optionally native)."
        )
    accuracy = pd.to_numeric(table["accuracy"], errors="coerce")
    if accuracy.isna().any() or ((accuracy < 0) | (accuracy > 1)).any():
        row = int(np.flatnonzero(accuracy.isna() | (accuracy < 0) | (accuracy > 1))[0]) + 2
        raise InputError(
            f"Line {row} of the human results '{path}' has accuracy "
            f"{table['accuracy'].iloc[row - 2]!r}; accuracies must be numbers from 0 to 1."
        )
    frame = pd.DataFrame(
        {"contrast": _contrast(table["phone_a"], table["phone_b"]), "accuracy": accuracy}
    )
    if "native" in table.columns:
        text = table["native"].astype(str).str.strip().str.lower()
        bad = ~text.isin(_TRUE | _FALSE)
        if bad.any():
            raise InputError(
                f"Line {int(np.flatnonzero(bad)[0]) + 2} of the human results '{path}' has "
                f"native={table['native'][bad].iloc[0]!r}; use 1/0 or true/false."
            )
        frame["native"] = text.isin(_TRUE)
        mixed = frame.groupby("contrast")["native"].nunique() > 1
        if mixed.any():
            raise InputError(
                f"The human results '{path}' mark the contrast '{mixed.idxmax()}' both native "
                "and non-native; a contrast is native or not for the listeners of the file."
            )
    agg = {"human_accuracy": ("accuracy", "mean"), "n_rows": ("accuracy", "size")}
    if "native" in frame.columns:
        agg["native"] = ("native", "first")
    return frame.groupby("contrast", sort=True).agg(**agg).reset_index()


def model_contrast_accuracy(contrasts: pd.DataFrame) -> pd.DataFrame:
    """Model accuracy per unordered contrast from an ABX per-contrast table.

    Parameters
    ----------
    contrasts : pandas.DataFrame
        ``phone_a``, ``phone_b``, ``error`` (:attr:`bids_w2v.abx.score.AbxResult.contrasts`).

    Returns
    -------
    pandas.DataFrame
        ``contrast``, ``model_accuracy``.
    """
    frame = pd.DataFrame(
        {
            "contrast": _contrast(contrasts["phone_a"], contrasts["phone_b"]),
            "model_accuracy": 1.0 - contrasts["error"].astype(float),
        }
    )
    return frame.groupby("contrast", sort=True)["model_accuracy"].mean().reset_index()


def compare_with_humans(
    contrasts: pd.DataFrame, human: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0
) -> dict:
    """Pearson correlation of model and human accuracy over contrasts, and native effects.

    Parameters
    ----------
    contrasts : pandas.DataFrame
        The model's per-contrast ABX table.
    human : pandas.DataFrame
        From :func:`read_human_results`.
    n_boot : int, default 1000
        Bootstrap resamples of the contrasts (percentile 95% interval).
    seed : int, default 0
        Seed of the bootstrap.

    Returns
    -------
    dict
        ``n_contrasts``, ``pearson_r``, ``ci_low``, ``ci_high`` and, when ``native`` is given,
        ``native_effect_model`` and ``native_effect_human`` (mean accuracy on native minus
        non-native contrasts). Values are NaN when undefined.
    """
    merged = model_contrast_accuracy(contrasts).merge(human, on="contrast", how="inner")
    x = merged["model_accuracy"].to_numpy(float)
    y = merged["human_accuracy"].to_numpy(float)
    out = {"n_contrasts": int(len(merged)), "pearson_r": _pearson(x, y)}
    rng = np.random.default_rng(seed)
    if len(merged) >= 3:
        draws = rng.integers(0, len(merged), size=(n_boot, len(merged)))
        boot = np.array([_pearson(x[d], y[d]) for d in draws])
        boot = boot[np.isfinite(boot)]
        low, high = np.percentile(boot, [2.5, 97.5]) if boot.size else (np.nan, np.nan)
    else:
        low = high = np.nan
    out.update(ci_low=float(low), ci_high=float(high))
    if "native" in merged.columns:
        native = merged["native"].to_numpy(bool)
        for who, acc in (("model", x), ("human", y)):
            if native.any() and (~native).any():
                out[f"native_effect_{who}"] = float(acc[native].mean() - acc[~native].mean())
            else:
                out[f"native_effect_{who}"] = float("nan")
    return out


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])
