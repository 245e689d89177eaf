"""Figures of the participant report (matplotlib / nilearn; returned as PNG bytes)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import nibabel as nb
import numpy as np

from bids_w2v.reports.html import figure_png


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
    return figure_png(fig)


#: at most this many names on a colour bar (every other one, or fewer, beyond)
MAX_TICKS = 16


def label_colorbar(bar, ticks: Sequence[tuple[float, str]] | None) -> None:
    """Label a colour bar's ticks with names (``ticks``: (value, name), ... in order), e.g.
    the layer names of a peak-layer map; the last name is always shown."""
    if not ticks:
        return
    ticks = list(ticks)
    shown = ticks[:: int(np.ceil(len(ticks) / MAX_TICKS))]
    if shown[-1] != ticks[-1]:
        shown.append(ticks[-1])
    bar.set_ticks([v for v, _ in shown], labels=[name for _, name in shown])
    bar.ax.tick_params(labelsize=7)


def name_ticks(display, ticks: Sequence[tuple[float, str]] | None) -> None:
    """:func:`label_colorbar` of a nilearn display's colour bar."""
    bar = getattr(display, "_cbar", None)
    if bar is not None:
        label_colorbar(bar, ticks)


def glass_brain_png(
    img: nb.Nifti1Image,
    title: str,
    *,
    cmap: str,
    vmin: float,
    vmax: float,
    ticks: Sequence[tuple[float, str]] | None = None,
) -> bytes:
    """A nilearn glass-brain view of a statistical map (NaN shown as empty); ``ticks``
    ((value, name), ...) label the colour bar."""
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
    name_ticks(display, ticks)
    fig = display.frame_axes.figure
    data_png = figure_png(fig)
    display.close()
    return data_png


def layer_curves_png(
    curves: Sequence[tuple[str, Sequence[str], Sequence[float], Sequence[float]]],
    *,
    ylabel: str = "brain score (Pearson r)",
    title: str = "",
) -> bytes:
    """Score along depth for several regions or models, mean +/- s.e.m. across participants.

    Parameters
    ----------
    curves : sequence of (label, layers, means, sems)
        One curve each (layers shared by all curves, in depth order).
    ylabel, title : str
        Axis label and title.

    Returns
    -------
    bytes
        A PNG image.
    """
    fig, ax = plt.subplots(figsize=(8, 3.6))
    layers = list(curves[0][1]) if curves else []
    x = np.arange(len(layers))
    colours = plt.get_cmap("tab10" if len(curves) <= 10 else "tab20")
    for i, (label, names, means, sems) in enumerate(curves):
        pos = [layers.index(n) for n in names]
        err = np.nan_to_num(np.asarray(sems, dtype=float))
        ax.errorbar(
            pos, means, yerr=err, fmt="o-", ms=3, capsize=2, color=colours(i % 20), label=label
        )
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_xticks(x, layers, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    if curves:
        ax.legend(frameon=False, fontsize=7, ncol=max(1, len(curves) // 8 + 1))
    ax.spines[["top", "right"]].set_visible(False)
    return figure_png(fig)


def peak_distribution_png(
    layers: Sequence[str], percents: np.ndarray, subjects: Sequence[str]
) -> bytes:
    """Per-participant distribution of the peak layer: percent of voxels peaking at each layer.

    Parameters
    ----------
    layers : sequence of str
        Layer names in depth order.
    percents : ndarray, shape (n_subjects, n_layers)
        Percent of each participant's voxels whose best layer is each layer.
    subjects : sequence of str
        Participant labels (rows).

    Returns
    -------
    bytes
        A PNG image: one thin line per participant, the mean in bold.
    """
    fig, ax = plt.subplots(figsize=(8, 3.2))
    x = np.arange(len(layers))
    percents = np.asarray(percents, dtype=float)
    for row, _sub in zip(percents, subjects, strict=True):
        ax.plot(x, row, "-", color="0.6", lw=0.8, alpha=0.7, label=None)
    ax.bar(
        x,
        np.nanmean(percents, axis=0),
        color="tab:purple",
        alpha=0.6,
        label=f"mean of {len(subjects)} participant(s)",
    )
    ax.set_xticks(x, layers, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("% of voxels peaking")
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return figure_png(fig)


def difference_png(
    layers: Sequence[str],
    diff: Sequence[float],
    sem: Sequence[float],
    significant: Sequence[bool],
    *,
    label: str,
) -> bytes:
    """Whole-brain score difference between two models per layer (bars +/- s.e.m.).

    Significant layers (q < FDR level) are drawn in a darker colour.
    """
    fig, ax = plt.subplots(figsize=(8, 3.2))
    x = np.arange(len(layers))
    colours = ["tab:green" if s else "#b7d7b7" for s in significant]
    ax.bar(x, diff, yerr=np.nan_to_num(np.asarray(sem, dtype=float)), color=colours, capsize=2)
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_xticks(x, layers, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(f"{label}\n(difference in r)", fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    return figure_png(fig)


def layer_grid_png(
    imgs: Sequence[nb.Nifti1Image], titles: Sequence[str], *, cmap: str, vmin: float, vmax: float
) -> bytes:
    """One small axial glass brain per layer, on a shared colour scale (NaN shown empty)."""
    from nilearn import plotting

    n = len(imgs)
    cols = min(5, max(1, n))
    rows = int(np.ceil(n / cols))
    fig = plt.figure(figsize=(2.6 * cols, 2.6 * rows))
    for i, (img, title) in enumerate(zip(imgs, titles, strict=True)):
        ax = fig.add_subplot(rows, cols, i + 1)
        data = np.nan_to_num(np.asarray(img.dataobj, dtype=np.float32), nan=0.0)
        display = plotting.plot_glass_brain(
            nb.Nifti1Image(data, img.affine),
            axes=ax,
            title=None,
            cmap=cmap,
            vmin=vmin,
            vmax=vmax,
            plot_abs=False,
            display_mode="z",
            colorbar=i == n - 1,
            threshold=None,
        )
        display.title(title, size=8)
    return figure_png(fig)


def layer_map_png(
    img: nb.Nifti1Image,
    title: str,
    *,
    vmin: float,
    vmax: float,
    ticks: Sequence[tuple[float, str]] | None = None,
) -> bytes:
    """Axial slices of a peak-layer map with a sequential colour map (viridis: shallow to deep);
    ``ticks`` ((layer index, layer name), ...) label the colour bar."""
    from nilearn import plotting

    data = np.asarray(img.dataobj, dtype=np.float32)
    display = plotting.plot_img(
        nb.Nifti1Image(np.where(np.isfinite(data), data, np.nan), img.affine),
        display_mode="z",
        cut_coords=min(6, img.shape[2]),
        cmap="viridis",
        vmin=vmin,
        vmax=vmax,
        colorbar=True,
        title=title,
        black_bg=False,
        interpolation="nearest",
    )
    name_ticks(display, ticks)
    fig = display.frame_axes.figure
    data_png = figure_png(fig)
    display.close()
    return data_png
