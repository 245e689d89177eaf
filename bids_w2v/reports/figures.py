"""Figures of the participant report (matplotlib / nilearn; returned as PNG bytes)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib.pyplot as plt
import nibabel as nb
import numpy as np


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def layer_profile_png(
    layers: Sequence[str], mean_scores: Sequence[float], top_scores: Sequence[float]
) -> bytes:
    """Brain score along depth: mean over the mask and mean over the best 10 % of voxels.

    Parameters
    ----------
    layers : sequence of str
        Layer names along depth.
    mean_scores, top_scores : sequence of float
        Mean r over all in-mask voxels, and over the 10 % best voxels (of the best layer).

    Returns
    -------
    bytes
        A PNG image.
    """
    fig, ax = plt.subplots(figsize=(8, 3.2))
    x = np.arange(len(layers))
    ax.plot(x, top_scores, "o-", color="tab:red", label="best 10 % of voxels")
    ax.plot(x, mean_scores, "o-", color="tab:blue", label="all voxels")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_xticks(x, layers, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("brain score (Pearson r)")
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def glass_brain_png(
    img: nb.Nifti1Image, title: str, *, cmap: str, vmin: float, vmax: float
) -> bytes:
    """A nilearn glass-brain view of a statistical map (NaN shown as empty)."""
    from nilearn import plotting

    data = np.nan_to_num(np.asarray(img.dataobj, dtype=np.float32), nan=0.0)
    clean = nb.Nifti1Image(data, img.affine)
    display = plotting.plot_glass_brain(
        clean,
        title=title,
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        colorbar=True,
        plot_abs=False,
        threshold=None,
        display_mode="lyrz",
    )
    fig = display.frame_axes.figure
    data_png = _png(fig)
    display.close()
    return data_png
