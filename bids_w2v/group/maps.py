"""Group-level maps of one model: mean r, Wilcoxon p and FDR q, thresholded and normalised
maps, peak layers and ROI tables, written in the participant maps' form (see
:mod:`bids_w2v.group.collection`)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bids_w2v.errors import InputError
from bids_w2v.group.collection import (
    MapGrid,
    load_grid,
    load_map,
    load_model_stack,
    same_grid,
    table_path,
    write_table,
)
from bids_w2v.group.statistics import (
    circular_mean_position,
    fdr_bh,
    mean_across_subjects,
    min_wilcoxon_p,
    wilcoxon_against_zero,
)
from bids_w2v.outputs.atomic import write_json
from bids_w2v.outputs.maps import peak_layer
from bids_w2v.outputs.names import layer_desc, statmap_path


class GroupWriter:
    """Write group maps in the form of a reference map, with sidecars, collecting the paths.

    Volumes give a NIfTI, GIfTI surfaces one ``.func.gii`` (and sidecar) per hemisphere, CIFTI a
    ``.dscalar.nii``; every file is written atomically.
    """

    def __init__(self, output_dir: Path, ref: MapGrid, **common) -> None:
        self.output_dir, self.ref, self.common = Path(output_dir), ref, common
        self.written: list[Path] = []

    def paths(self, **entities) -> list[Path]:
        """The map files of these entities (one per hemisphere on surfaces)."""
        return group_map_files(self.output_dir, self.ref, **self.common, **entities)

    def map(self, values: np.ndarray, sidecar: Mapping, **entities) -> Path:
        """Write one map; returns its first file (hemi-L on surfaces)."""
        from bids_w2v.outputs.maps import save_map_like, sidecar_path

        name = f"{entities.get('desc', '')} {entities.get('stat', '')}".strip()
        paths = self.paths(**entities)
        for part, reference, path in zip(
            self.ref.split(values), self.ref.files, paths, strict=True
        ):
            write_json(sidecar_path(path), dict(sidecar))
            save_map_like(part, reference, path, name=name)
            self.written.append(path)
        return paths[0]

    def table(self, table: pd.DataFrame, description: Mapping, **entities) -> Path:
        path = write_table(
            table_path(self.output_dir, **self.common, **entities), table, description
        )
        self.written.append(path)
        return path


def group_map_files(
    output_dir: Path,
    grid: MapGrid,
    *,
    task: str,
    space: str,
    res: str | None,
    desc: str | None,
    stat: str,
    subject: str | None = None,
) -> list[Path]:
    """Paths of a group (or participant) map in the form of ``grid``: one per hemisphere on
    GIfTI surfaces, else one."""
    hemis = grid.hemis
    return [
        statmap_path(
            output_dir,
            task=task,
            space=space,
            res=res,
            desc=desc,
            stat=stat,
            subject=subject,
            hemi=hemi,
            den=grid.den,
            extension=grid.extension,
        )
        for hemi in hemis
    ]


def significance_maps(
    values: np.ndarray, fdr_q: float, notes: list[str], what: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """Wilcoxon p and BH q maps over subjects (axis 0), or None with a note if too few."""
    n = values.shape[0]
    if n < 2:
        note = (
            f"{what}: {n} participant(s); the Wilcoxon signed-rank test needs at least 2, so no "
            "p, q or thresholded map was written."
        )
        warnings.warn(note, stacklevel=3)
        notes.append(note)
        return None
    if min_wilcoxon_p(n) > fdr_q:
        note = (
            f"{what}: with {n} participants the smallest possible Wilcoxon p-value is "
            f"{min_wilcoxon_p(n):.3g} > --fdr-q {fdr_q:g}; no voxel can be significant."
        )
        if note not in notes:
            notes.append(note)
    _, p = wilcoxon_against_zero(values.reshape(n, -1))
    return p, fdr_bh(p)


def thresholded(mean: np.ndarray, q: np.ndarray, fdr_q: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(q) & (q < fdr_q), mean, np.nan)


def write_significance(
    out: GroupWriter,
    sig: tuple[np.ndarray, np.ndarray],
    mean: np.ndarray,
    *,
    fdr_q: float,
    meta: dict,
    desc: str,
    thresholded_stat: str,
    thresholded_meta: dict,
) -> None:
    """Write the ``stat-p``, ``stat-q`` and thresholded-mean maps of one layer.

    ``sig`` is the ``(p, q)`` pair of :func:`significance_maps`; ``meta`` holds the layer's
    sidecar fields and the ``Test``; ``thresholded_meta`` adds the thresholded map's
    ``Statistic`` (and any description) to ``meta``.
    """
    p, q = sig
    out.map(p, {**meta, "Statistic": "p"}, stat="p", desc=desc)
    out.map(
        q,
        {**meta, "Statistic": "q", "Correction": "Benjamini-Hochberg FDR over voxels"},
        stat="q",
        desc=desc,
    )
    out.map(
        thresholded(mean, q, fdr_q),
        {**meta, **thresholded_meta, "FDRLevel": fdr_q},
        stat=thresholded_stat,
        desc=desc,
    )


def write_group_maps(
    layer_maps: Mapping[str, Sequence[tuple[str, Path, dict]]],
    *,
    output_dir: Path,
    task: str,
    space: str,
    res: str | None,
    model_label: str,
    fdr_q: float = 0.05,
    roi_atlas: Path | None = None,
    ceiling_file: Path | None = None,
) -> list[Path]:
    """Group maps and tables of one model.

    Per layer: mean r (``stat-meanr``), Wilcoxon p (``stat-p``), BH-FDR q (``stat-q``), the mean
    where q < ``fdr_q`` (``stat-meanrthresh``) and, with a noise ceiling, mean r / mean ceiling
    (``stat-normr``). Per model: peak layer of the mean (``stat-peaklayer``), circular mean of
    the per-subject peaks (``stat-circpeaklayer``), the distribution of per-subject peaks
    (``stat-peaklayer_summary.tsv``) and scores per region (``stat-roi_summary.tsv``; the whole
    brain always, atlas regions with ``roi_atlas``).

    Parameters
    ----------
    layer_maps : mapping
        Layer name -> list of (subject, map path, sidecar) (:func:`collect_participant_maps`).
    output_dir : Path
        The bids-w2v derivative dataset.
    task, space, res, model_label : str
        Entities of the outputs.
    fdr_q : float
        FDR level of the thresholded maps.
    roi_atlas : Path, optional
        Label image (names TSV beside it) for the ROI table.
    ceiling_file : Path, optional
        Group mean noise-ceiling map (:func:`write_noise_ceiling`).

    Returns
    -------
    list of Path
        Files written.
    """
    data = load_model_stack(layer_maps)
    layers, indices, subjects = data.layers, data.indices, data.subjects
    out = GroupWriter(output_dir, data.ref, task=task, space=space, res=res)
    meta0 = {**data.provenance, "NumberOfSubjects": len(subjects)}
    notes: list[str] = []
    n_layers, n_sub = len(layers), len(subjects)
    flat = data.scores.reshape(n_layers, n_sub, -1)
    means = np.stack([mean_across_subjects(flat[i]) for i in range(n_layers)])
    ceiling = load_map(ceiling_file).ravel() if ceiling_file else None
    if ceiling_file and not same_grid(load_grid(ceiling_file), data.ref):
        raise InputError(f"The noise ceiling {ceiling_file} is not on the grid of the maps.")
    for i, name in enumerate(layers):
        desc = layer_desc(model_label, name)
        layer_meta = {**meta0, "LayerName": name, "LayerIndex": indices[i]}
        out.map(means[i], {**layer_meta, "Statistic": "mean_pearson_r"}, stat="meanr", desc=desc)
        sig = significance_maps(flat[i], fdr_q, notes, f"model {model_label}")
        if sig is not None:
            test = (
                "two-sided Wilcoxon signed-rank across participants against 0 "
                "(scipy.stats.wilcoxon)"
            )
            write_significance(
                out,
                sig,
                means[i],
                fdr_q=fdr_q,
                meta={**layer_meta, "Test": test},
                desc=desc,
                thresholded_stat="meanrthresh",
                thresholded_meta={
                    "Statistic": "mean_pearson_r_thresholded",
                    "Description": f"Mean r where q < {fdr_q:g}, NaN elsewhere.",
                },
            )
        if ceiling is not None:
            from bids_w2v.group.ceiling import normalised_scores

            out.map(
                normalised_scores(means[i], ceiling),
                {
                    **layer_meta,
                    "Statistic": "normalised_mean_pearson_r",
                    "Description": "Mean brain score divided by the mean noise ceiling; NaN where "
                    "the ceiling is <= 0.",
                    "NoiseCeiling": ceiling_file.name,
                },
                stat="normr",
                desc=desc,
            )

    layer_table = {str(i): n for n, i in zip(layers, indices, strict=True)}
    peak = peak_layer(means, indices)
    out.map(
        peak,
        {
            **meta0,
            "Statistic": "peak_layer",
            "Layers": layer_table,
            "Description": "Layer of highest mean brain score across participants.",
        },
        stat="peaklayer",
        desc=layer_desc(model_label),
    )
    sub_peaks = np.stack([peak_layer(flat[:, s], indices) for s in range(n_sub)])
    out.map(
        circular_mean_position(sub_peaks, indices),
        {
            **meta0,
            "Statistic": "circular_mean_peak_layer",
            "Layers": layer_table,
            "Description": "Per-participant peak layers combined by the circular mean of Millet, "
            "Caucheteux et al. 2022: angle(mean exp(2 i pi k / (K + 1))), k the position among "
            "the K layers compared, reported on the LayerIndex scale.",
        },
        stat="circpeaklayer",
        desc=layer_desc(model_label),
    )
    rows = []
    for s, sub in enumerate(subjects):
        valid = np.isfinite(sub_peaks[s])
        for name, index in zip(layers, indices, strict=True):
            count = int(np.sum(sub_peaks[s] == index))
            rows.append(
                {
                    "participant_id": f"sub-{sub}",
                    "layer": name,
                    "layer_index": index,
                    "n_voxels": count,
                    "percent": 100 * count / valid.sum() if valid.any() else np.nan,
                }
            )
    out.table(
        pd.DataFrame(rows),
        {
            **meta0,
            "Description": "Distribution of each participant's per-voxel peak layer.",
            "n_voxels": "voxels of the participant's mask whose best layer is this one",
            "percent": "the same, in percent of the participant's voxels",
        },
        stat="peaklayer",
        desc=layer_desc(model_label),
    )

    from bids_w2v.group.roi import load_atlas, roi_summary

    labels, names = (None, {})
    if roi_atlas:
        labels, names = load_atlas(Path(roi_atlas), data.ref)
        labels = labels.ravel()
    table = roi_summary(flat, layers, indices, labels, names, peak, model_label)
    out.table(
        table,
        {
            **meta0,
            "Atlas": str(roi_atlas) if roi_atlas else None,
            "Notes": notes,
            "Description": "Brain score per region and layer: per participant the mean over the "
            "region's voxels, then mean and standard error across participants; percent_peak is "
            "the share of the region's voxels whose group peak layer (stat-peaklayer) is this "
            "layer. roi_index -1 is the whole brain (union of the participants' masks).",
        },
        stat="roi",
        desc=layer_desc(model_label),
    )
    return out.written
