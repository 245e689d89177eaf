"""Group-level maps of one model: mean r, significance (:mod:`bids_w2v.group.significance`),
thresholded and normalised maps, peak layers and ROI tables, written in the participant maps'
form (see :mod:`bids_w2v.group.collection`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bids_w2v.errors import InputError
from bids_w2v.group.collection import (
    MapGrid,
    load_grid,
    load_map,
    same_grid,
    table_path,
    write_table,
)
from bids_w2v.group.significance import (
    GroupTest,
    significance_maps,
    write_significance,
)
from bids_w2v.group.stacks import open_model_maps
from bids_w2v.group.statistics import (
    RunningPeak,
    circular_mean_position,
    mean_across_subjects,
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
        return group_map_files(self.output_dir, self.ref, **{**self.common, **entities})

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
    group_test: GroupTest = GroupTest(),
) -> list[Path]:
    """Group maps and tables of one model.

    Per layer: mean r (``stat-meanr``), Wilcoxon p (``stat-p``), BH-FDR q (``stat-q``), the mean
    where q < ``fdr_q`` (``stat-meanrthresh``) -- or with ``group_test.test == "permutation"``
    the sign-flip t (``stat-t``), its FWE-corrected p (``stat-fwep``) and the mean where that p
    < ``fdr_q`` and, with a noise ceiling, mean r / mean ceiling
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
    group_test : GroupTest
        Wilcoxon + BH-FDR (the paper's) or sign-flip permutation with FWE correction.

    Returns
    -------
    list of Path
        Files written.
    """
    data = open_model_maps(layer_maps)  # one layer in memory at a time
    layers, indices, subjects = data.layers, data.indices, data.subjects
    out = GroupWriter(output_dir, data.ref, task=task, space=space, res=res)
    meta0 = {**data.provenance, "NumberOfSubjects": len(subjects)}
    notes: list[str] = []
    n_layers, n_sub = len(layers), len(subjects)
    means = np.full((n_layers, int(np.prod(data.ref.shape))), np.nan)
    sub_peak = RunningPeak(indices)
    inside = np.zeros(means.shape[1], dtype=bool)  # voxels of any participant and layer
    ceiling = load_map(ceiling_file).ravel() if ceiling_file else None
    if ceiling_file and not same_grid(load_grid(ceiling_file), data.ref):
        raise InputError(f"The noise ceiling {ceiling_file} is not on the grid of the maps.")
    for i, name in enumerate(layers):  # pass 1 over layers: maps, peaks
        flat = data.layer(name).reshape(n_sub, -1)
        means[i] = mean_across_subjects(flat)
        sub_peak.add(flat)
        inside |= np.isfinite(flat).any(axis=0)
        desc = layer_desc(model_label, name)
        layer_meta = {**meta0, "LayerName": name, "LayerIndex": indices[i]}
        out.map(means[i], {**layer_meta, "Statistic": "mean_pearson_r"}, stat="meanr", desc=desc)
        sig = significance_maps(flat, fdr_q, notes, f"model {model_label}", group_test)
        if sig is not None:
            write_significance(
                out,
                sig,
                means[i],
                fdr_q=fdr_q,
                meta=layer_meta,
                desc=desc,
                thresholded_stat="meanrthresh",
                thresholded_meta={
                    "Statistic": "mean_pearson_r_thresholded",
                    "Description": "Mean r",
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
        del flat

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
    sub_peaks = sub_peak.peaks()
    del sub_peak
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

    from bids_w2v.group.roi import load_atlas, roi_layer_rows, roi_regions, roi_table

    labels, names = (None, {})
    if roi_atlas:
        labels, names = load_atlas(Path(roi_atlas), data.ref)
        labels = labels.ravel()
    regions = roi_regions(inside, labels, names)
    table = roi_table(  # pass 2 over layers: scores per region
        [
            roi_layer_rows(
                data.layer(name).reshape(n_sub, -1), name, index, regions, peak, model_label
            )
            for name, index in zip(layers, indices, strict=True)
        ]
    )
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
