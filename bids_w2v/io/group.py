"""Collect participant-level maps and write group-level maps and tables.

Maps come in the participant level's form: NIfTI volumes, one GIfTI per hemisphere (read as one
map, left then right: :func:`load_map`) or CIFTI dense scalars. Every read goes through
:func:`load_map` / :func:`load_grid`, every write through ``_Writer``, which writes group maps
back in the same form (``hemi-L``/``hemi-R`` GIfTIs, ``.dscalar.nii``) with JSON sidecars.
"""

from __future__ import annotations

import json
import re
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd
from bids.layout.writing import build_path

from bids_w2v.encoding.stats import (
    circular_mean_position,
    fdr_bh,
    mean_across_subjects,
    min_wilcoxon_p,
    sem_across_subjects,
    wilcoxon_against_zero,
)
from bids_w2v.errors import InputError
from bids_w2v.io.atomic import write_json, write_text
from bids_w2v.io.derivatives import layer_desc, statmap_path
from bids_w2v.io.maps import peak_layer

TABLE_PATTERN = (
    "task-{task}[_space-{space}][_res-{res}][_desc-{desc}]_stat-{stat}"
    "_{suffix<summary>|summary}{extension<.tsv|.json>|.tsv}"
)
MAP_FORMS = (".nii.gz", ".func.gii", ".dscalar.nii")
PROVENANCE_KEYS = ("Model", "ModelLabel", "RandomInit", "Seed", "WeightsSHA256")


def _entity(name: str, key: str) -> str | None:
    match = re.search(rf"(?:^|_){key}-([A-Za-z0-9]+)", name)
    return match.group(1) if match else None


def _form(path: Path) -> str:
    """``volume``, ``surface`` (a GIfTI per hemisphere) or ``cifti`` from a map's name."""
    name = Path(path).name
    if name.endswith(".func.gii"):
        return "surface"
    if name.endswith(".dscalar.nii"):
        return "cifti"
    return "volume"


def hemisphere_files(path: Path) -> tuple[Path, ...]:
    """The files of one map: ``(path,)``, or the ``hemi-L`` and ``hemi-R`` GIfTIs of a surface
    map named by either of them."""
    path = Path(path)
    if _form(path) != "surface":
        return (path,)
    left = path.with_name(path.name.replace("_hemi-R_", "_hemi-L_"))
    return (left, left.with_name(left.name.replace("_hemi-L_", "_hemi-R_")))


@dataclass(frozen=True)
class MapGrid:
    """The form and geometry of a map: a NIfTI grid, a GIfTI pair or CIFTI grayordinates.

    Values of a map on this grid are one array (:func:`load_map`): the 3-D volume, the left
    then the right hemisphere's vertices, or the grayordinates.
    """

    form: str  # "volume", "surface" or "cifti"
    files: tuple[Path, ...]  # reference map: (nii,), (hemi-L, hemi-R) or (dscalar,)
    shape: tuple[int, ...]  # shape of the values
    sizes: tuple[int, ...]  # values per file
    affine: np.ndarray | None  # volumes
    den: str | None  # CIFTI density entity

    @property
    def extension(self) -> str:
        """Extension of maps on this grid."""
        return {"volume": ".nii.gz", "surface": ".func.gii", "cifti": ".dscalar.nii"}[self.form]

    def image(self) -> nb.Nifti1Image:
        """The reference NIfTI (volumes only)."""
        return nb.load(str(self.files[0]))

    def split(self, values: np.ndarray) -> list[np.ndarray]:
        """Values per file (per hemisphere on GIfTI surfaces)."""
        flat = np.asarray(values, dtype=np.float64).reshape(-1)
        if self.form == "volume":
            return [flat.reshape(self.shape)]
        return list(np.split(flat, np.cumsum(self.sizes)[:-1]))


def load_map(path: Path) -> np.ndarray:
    """The values of a map (float64; NaN outside the participant's mask).

    A NIfTI gives its 3-D array, a CIFTI its grayordinates, a GIfTI (either hemisphere's file)
    the left then the right hemisphere's vertices.
    """
    from bids_w2v.io.maps import load_map_data

    parts = [load_map_data(f) for f in hemisphere_files(Path(path))]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def load_grid(path: Path) -> MapGrid:
    """A map's form and geometry (shape and affine, vertices, grayordinates)."""
    files = hemisphere_files(Path(path))
    form = _form(files[0])
    if form == "volume":
        img = nb.load(str(files[0]))
        return MapGrid(
            form, files, tuple(img.shape[:3]), (int(np.prod(img.shape[:3])),), img.affine, None
        )
    for f in files:
        if not f.exists():
            raise InputError(
                f"{f} is missing: a surface map has one GIfTI per hemisphere. Re-run the "
                "participant level, or restore the file."
            )
    sizes = []
    for f in files:
        img = nb.load(str(f))
        sizes.append(int(img.darrays[0].data.shape[0]) if form == "surface" else int(img.shape[-1]))
    return MapGrid(form, files, (sum(sizes),), tuple(sizes), None, _entity(files[0].name, "den"))


def same_grid(a: MapGrid, b: MapGrid) -> bool:
    """Whether two maps have the same form and geometry."""
    if a.form != b.form or a.shape != b.shape or a.sizes != b.sizes:
        return False
    if a.form == "volume":
        return np.allclose(a.affine, b.affine, atol=1e-3)
    if a.form == "cifti":
        axis = nb.load(str(a.files[0])).header.get_axis(1)
        return axis == nb.load(str(b.files[0])).header.get_axis(1)
    return True


def table_path(
    output_dir: Path,
    *,
    task: str,
    space: str | None,
    res: str | None,
    desc: str | None,
    stat: str,
    extension: str = ".tsv",
) -> Path:
    """Path of a group-level table (``..._stat-<stat>_summary.tsv``) or its JSON sidecar."""
    entities = {
        "task": task,
        "space": space,
        "res": res,
        "desc": desc,
        "stat": stat,
        "suffix": "summary",
        "extension": extension,
    }
    rel = build_path({k: v for k, v in entities.items() if v is not None}, [TABLE_PATTERN])
    return Path(output_dir) / rel


def write_table(path: Path, table: pd.DataFrame, description: Mapping) -> Path:
    """Write a TSV (``n/a`` for missing values) and its JSON sidecar, atomically."""
    write_json(path.with_name(path.name[: -len(".tsv")] + ".json"), dict(description))
    return write_text(path, table.to_csv(sep="\t", index=False, na_rep="n/a", float_format="%.6g"))


def collect_participant_maps(
    output_dir: Path,
    task: str | None,
    space: str,
    res: str | None,
    participants: Sequence[str] = (),
) -> dict[str, dict[str, list[tuple[str, Path, dict]]]]:
    """Find participant brain-score maps written by bids-w2v (from their JSON sidecars).

    Parameters
    ----------
    output_dir : Path
        The bids-w2v derivative dataset.
    task : str or None
        Task label (None: the only task present).
    space, res : str
        Space entities of the maps.
    participants : sequence of str
        Restrict to these subjects (all by default).

    Returns
    -------
    dict
        Model label -> layer name -> list of (subject, map path, sidecar), sorted by subject;
        the map path of a GIfTI pair is its ``hemi-L`` file.

    Raises
    ------
    InputError
        No map, several tasks, or a subject whose maps are only in another space.
    """
    found: dict = defaultdict(lambda: defaultdict(list))
    tasks, other_spaces = set(), defaultdict(set)
    for sidecar in sorted(Path(output_dir).glob("sub-*/func/sub-*_stat-r_statmap.json")):
        name = sidecar.name
        sub = _entity(name, "sub")
        if participants and sub not in participants:
            continue
        if task is not None and _entity(name, "task") != task:
            continue
        if _entity(name, "space") != space or _entity(name, "res") != res:
            other_res = _entity(name, "res")
            other_spaces[sub].add(
                f"{_entity(name, 'space')}{':res-' + other_res if other_res else ''}"
            )
            continue
        if _entity(name, "hemi") == "R":  # a surface map is named by its hemi-L file
            continue
        meta = json.loads(sidecar.read_text())
        stem = name[: -len(".json")]
        maps = [sidecar.with_name(stem + ext) for ext in MAP_FORMS]
        path = next((m for m in maps if m.exists()), None)
        if path is not None and "ModelLabel" in meta and "LayerName" in meta:
            tasks.add(_entity(name, "task"))
            found[meta["ModelLabel"]][meta["LayerName"]].append((sub, path, meta))
    wanted = f"{space}{':res-' + res if res else ''}"
    if not found:
        elsewhere = sorted({s for spaces in other_spaces.values() for s in spaces})
        raise InputError(
            "No participant-level brain-score maps (sub-*/func/*_stat-r_statmap.nii.gz, "
            ".func.gii per hemisphere or .dscalar.nii) in "
            f"space '{wanted}'{' for task ' + task if task else ''} under {output_dir}"
            f"{' (maps exist in: ' + ', '.join(elsewhere) + ')' if elsewhere else ''}. Run the "
            "participant level first with the same OUTPUT_DIR, --space and --task, or give the "
            "group level the --space of the participant maps."
        )
    if len(tasks) > 1:
        raise InputError(
            f"{output_dir} holds maps of several tasks ({', '.join(sorted(tasks))}); choose one "
            "with --task."
        )
    have = {s for layers in found.values() for maps in layers.values() for s, _, _ in maps}
    missing = sorted(set(other_spaces) - have)
    if missing:
        raise InputError(
            f"The participant maps under {output_dir} are not all in one space: sub-"
            f"{', sub-'.join(missing)} only has maps in "
            f"{', '.join(sorted(other_spaces[missing[0]]))}"
            f" while the group level combines space '{wanted}'. Re-run the participant level of "
            "those subjects with the same --space, or restrict the group level to the others "
            "with --participant-label."
        )
    return {m: dict(layers) for m, layers in found.items()}


@dataclass
class ModelStack:
    """Every participant's brain-score maps of one model on a common grid."""

    model_label: str
    layers: list[str]
    indices: list[int]
    subjects: list[str]
    scores: np.ndarray  # (n_layers, n_subjects, *grid), NaN outside a mask or missing
    ref: MapGrid
    provenance: dict


def load_model_stack(layer_maps: Mapping[str, Sequence[tuple[str, Path, dict]]]) -> ModelStack:
    """Load one model's participant maps (from :func:`collect_participant_maps`).

    Raises
    ------
    InputError
        If the maps are not all on one grid.
    """
    layers = sorted(layer_maps, key=lambda n: layer_maps[n][0][2]["LayerIndex"])
    indices = [int(layer_maps[n][0][2]["LayerIndex"]) for n in layers]
    subjects = sorted({s for n in layers for s, _, _ in layer_maps[n]})
    first = layer_maps[layers[0]][0][1]
    ref = load_grid(first)
    stack = np.full((len(layers), len(subjects)) + ref.shape, np.nan)
    for i, name in enumerate(layers):
        for sub, path, _ in layer_maps[name]:
            if not same_grid(load_grid(path), ref):
                raise InputError(
                    f"{path} is not on the same grid (or surface mesh) as {first}; the group "
                    "level needs every participant in the same space and resolution (re-run the "
                    "participant level with one --space SPACE:res-N for all; fsnative surfaces "
                    "differ between participants: use fsaverage* or fsLR)."
                )
            stack[i, subjects.index(sub)] = load_map(path)
    meta = layer_maps[layers[0]][0][2]
    provenance = {k: v for k, v in meta.items() if k in PROVENANCE_KEYS}
    provenance["Participants"] = subjects
    return ModelStack(meta["ModelLabel"], layers, indices, subjects, stack, ref, provenance)


class _Writer:
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
        from bids_w2v.io.maps import save_map_like, sidecar_path

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
    hemis = ("L", "R") if grid.form == "surface" else (None,)
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


def _significance(
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


def _thresholded(mean: np.ndarray, q: np.ndarray, fdr_q: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(q) & (q < fdr_q), mean, np.nan)


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
    out = _Writer(output_dir, data.ref, task=task, space=space, res=res)
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
        sig = _significance(flat[i], fdr_q, notes, f"model {model_label}")
        if sig is not None:
            p, q = sig
            test = {
                "Test": "two-sided Wilcoxon signed-rank across participants against 0 "
                "(scipy.stats.wilcoxon)"
            }
            out.map(p, {**layer_meta, **test, "Statistic": "p"}, stat="p", desc=desc)
            out.map(
                q,
                {
                    **layer_meta,
                    **test,
                    "Statistic": "q",
                    "Correction": "Benjamini-Hochberg FDR over voxels",
                },
                stat="q",
                desc=desc,
            )
            out.map(
                _thresholded(means[i], q, fdr_q),
                {
                    **layer_meta,
                    **test,
                    "Statistic": "mean_pearson_r_thresholded",
                    "FDRLevel": fdr_q,
                    "Description": f"Mean r where q < {fdr_q:g}, NaN elsewhere.",
                },
                stat="meanrthresh",
                desc=desc,
            )
        if ceiling is not None:
            from bids_w2v.encoding.noise_ceiling import normalised_scores

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

    from bids_w2v.io.roi import load_atlas, roi_summary

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


def model_order(found: Mapping[str, Mapping[str, Sequence]]) -> list[str]:
    """Models with trained weights first (then by label): comparisons are trained - random."""

    def key(label: str) -> tuple:
        meta = next(iter(found[label].values()))[0][2]
        return (bool(meta.get("RandomInit", False)), label)

    return sorted(found, key=key)


def write_model_comparison(
    maps_a: Mapping[str, Sequence[tuple[str, Path, dict]]],
    maps_b: Mapping[str, Sequence[tuple[str, Path, dict]]],
    *,
    output_dir: Path,
    task: str,
    space: str,
    res: str | None,
    fdr_q: float = 0.05,
) -> list[Path]:
    """Paired comparison of two models per layer (model A minus model B).

    Per layer present in both: the mean difference map (``desc-<A>Minus<B><Layer>_stat-meandiff``),
    paired Wilcoxon p and BH q maps and the thresholded difference; and a whole-brain table
    (``desc-<A>Minus<B>_stat-comparison_summary.tsv``): per layer the participants' whole-brain
    mean scores of both models, their difference and a paired Wilcoxon test across participants.

    Returns
    -------
    list of Path
        Files written.
    """
    a, b = load_model_stack(maps_a), load_model_stack(maps_b)
    if not same_grid(a.ref, b.ref):
        raise InputError(
            f"The maps of models {a.model_label} and {b.model_label} are on different grids; "
            "compare models computed in the same --space."
        )
    subjects = [s for s in a.subjects if s in b.subjects]
    layers = [n for n in a.layers if n in b.layers]
    label = f"{a.model_label}Minus{b.model_label}"
    out = _Writer(output_dir, a.ref, task=task, space=space, res=res)
    meta0 = {
        "ModelA": a.provenance,
        "ModelB": b.provenance,
        "Participants": subjects,
        "NumberOfSubjects": len(subjects),
        "Contrast": f"{a.model_label} - {b.model_label}",
    }
    notes: list[str] = []
    rows = []
    if not subjects or not layers:
        notes.append(f"models {a.model_label} and {b.model_label} share no participant or layer")
    for name in layers:
        ia, ib = a.layers.index(name), b.layers.index(name)
        sa = a.scores[ia][[a.subjects.index(s) for s in subjects]].reshape(len(subjects), -1)
        sb = b.scores[ib][[b.subjects.index(s) for s in subjects]].reshape(len(subjects), -1)
        diff = sa - sb
        mean = mean_across_subjects(diff)
        desc = layer_desc(label, name)
        layer_meta = {**meta0, "LayerName": name, "LayerIndex": a.indices[ia]}
        out.map(
            mean,
            {**layer_meta, "Statistic": "mean_difference_pearson_r"},
            stat="meandiff",
            desc=desc,
        )
        sig = _significance(diff, fdr_q, notes, f"comparison {label}")
        if sig is not None:
            p, q = sig
            test = {"Test": "two-sided paired Wilcoxon signed-rank across participants"}
            out.map(p, {**layer_meta, **test, "Statistic": "p"}, stat="p", desc=desc)
            out.map(
                q,
                {
                    **layer_meta,
                    **test,
                    "Statistic": "q",
                    "Correction": "Benjamini-Hochberg FDR over voxels",
                },
                stat="q",
                desc=desc,
            )
            out.map(
                _thresholded(mean, q, fdr_q),
                {
                    **layer_meta,
                    **test,
                    "Statistic": "mean_difference_thresholded",
                    "FDRLevel": fdr_q,
                },
                stat="meandiffthresh",
                desc=desc,
            )
        # whole brain: per participant the mean over voxels inside both models' masks
        both = np.isfinite(sa) & np.isfinite(sb)
        with np.errstate(invalid="ignore"):
            wa = np.where(both, sa, 0).sum(1) / both.sum(1)
            wb = np.where(both, sb, 0).sum(1) / both.sum(1)
        wdiff = wa - wb
        if len(subjects) >= 2 and np.isfinite(wdiff).all():
            stat, p = wilcoxon_against_zero(wdiff[:, None])
            stat, p = float(stat[0]), float(p[0])
        else:
            stat, p = np.nan, np.nan
        rows.append(
            {
                "model_a": a.model_label,
                "model_b": b.model_label,
                "layer": name,
                "layer_index": a.indices[ia],
                "mean_a": float(np.mean(wa)),
                "mean_b": float(np.mean(wb)),
                "mean_difference": float(np.mean(wdiff)),
                "sem_difference": float(sem_across_subjects(wdiff[:, None])[0]),
                "n_subjects": len(subjects),
                "wilcoxon_statistic": stat,
                "p": p,
            }
        )
    table = pd.DataFrame(rows)
    if len(table):
        table["q"] = fdr_bh(table["p"].to_numpy())
    out.table(
        table,
        {
            **meta0,
            "Notes": notes,
            "Description": "Whole-brain comparison per layer (Millet, Caucheteux et al. 2022, Fig. "
            "2C): each participant's mean brain score over the voxels of both models' maps, the "
            "difference A - B, a paired two-sided Wilcoxon test across participants and BH q over "
            "layers.",
        },
        stat="comparison",
        desc=layer_desc(label),
    )
    return out.written


def comparison_pairs(found: Mapping[str, Mapping[str, Sequence]]) -> list[tuple[str, str]]:
    """Every pair of models (A, B), trained models first."""
    return list(combinations(model_order(found), 2))


def _run_key(run) -> tuple:
    """Runs with the same key presented the same stimuli at the same times."""
    return (run.task,) + tuple(
        (str(p.stim_file), round(float(p.onset), 3)) for p in run.presentations
    )


def _run_keys(runs: Sequence) -> list[tuple]:
    """:func:`_run_key` of each run plus its repetition number within the participant.

    A story heard twice (Narratives' pieman runs 1 and 2) gives two keys: the k-th hearing of
    one participant is paired with the k-th hearing of the others, never with itself.
    """
    seen: dict[tuple, int] = defaultdict(int)
    keys = []
    for run in runs:
        key = _run_key(run)
        keys.append(key + (seen[key],))
        seen[key] += 1
    return keys


def collect_options(
    *,
    desc_label: str = "preproc",
    bids_filter_file: Path | None = None,
    stimulus_map: Path | None = None,
    dropped_scans: int = 0,
    mask: Path | None = None,
    confounds_strategy: Sequence[str] = ("motion", "wm_csf", "high_pass"),
):
    """The :class:`~bids_w2v.io.filters.CollectOptions` the participant level used.

    Parameters
    ----------
    desc_label, bids_filter_file, stimulus_map, dropped_scans, mask
        ``--desc-label``, ``--bids-filter-file``, ``--stimulus-map``, ``--dropped-scans`` and
        ``--mask`` (files read here).
    confounds_strategy : sequence of str
        The participant maps' confounds strategy (``("none",)``: no confounds file needed).

    Returns
    -------
    CollectOptions
    """
    from bids_w2v.io.filters import CollectOptions, read_filter_file
    from bids_w2v.io.stimulus_map import read_stimulus_map

    return CollectOptions(
        desc=desc_label,
        filters=read_filter_file(Path(bids_filter_file)) if bids_filter_file else None,
        stimulus_map=read_stimulus_map(Path(stimulus_map)) if stimulus_map else None,
        stimulus_map_file=Path(stimulus_map) if stimulus_map else None,
        dropped_scans=int(dropped_scans),
        need_confounds=tuple(confounds_strategy) != ("none",),
        mask=Path(mask) if mask else None,
    )


def _map_space(runs: Sequence, kind: str):
    """The space the noise ceiling is computed in: run masks intersected (volumes), nilearn's
    EPI mask (volumes without masks), or the vertices varying in every run (surfaces)."""
    from bids_w2v.io.bold import common_mask
    from bids_w2v.io.surface import common_surface_space

    if kind != "volume":
        return common_surface_space([r.data_files for r in runs], kind)
    if all(r.mask is not None for r in runs):
        return common_mask([r.mask for r in runs])
    from nilearn.masking import compute_multi_epi_mask

    return compute_multi_epi_mask([str(f) for r in runs for f in r.data_files], threshold=1.0)


def _on_grid(values: np.ndarray, space) -> np.ndarray:
    """In-space values placed on the full map (NaN elsewhere): volume, L+R vertices or
    grayordinates."""
    from bids_w2v.io.maps import to_volume
    from bids_w2v.io.surface import CiftiSpace, SurfaceSpace

    if isinstance(space, SurfaceSpace):
        halves = space.split(values)
        return np.concatenate([halves["L"], halves["R"]]).astype(np.float64)
    if isinstance(space, CiftiSpace):
        return space.full(values).astype(np.float64)
    return np.asarray(to_volume(values, space).dataobj, dtype=np.float64)


def write_noise_ceiling(
    found: Mapping[str, Mapping[str, Sequence[tuple[str, Path, dict]]]],
    *,
    bids_dir: Path,
    fmriprep_dir: Path,
    output_dir: Path,
    scratch_dir: Path,
    task: str,
    space: str,
    res: str | None,
    options=None,
) -> tuple[list[Path], list[str]]:
    """Noise ceiling of every participant who has a partner, and its group mean.

    Each participant's cleaned BOLD (same cleaning as the participant level, from the maps'
    sidecars: confounds strategy, dummy and trimmed scans, high-pass) is predicted from the mean
    of the other participants' cleaned BOLD for the runs they share (same stimuli at the same
    onsets), cross-validated on the encoding's outer folds
    (:func:`bids_w2v.encoding.noise_ceiling.crossval_ceiling`). Scans are those kept in every
    participant of a run (non-steady-state volumes dropped). Volumes, GIfTI surfaces and CIFTI
    grayordinates alike; the maps take the form of the participant maps.

    Parameters
    ----------
    found : mapping
        From :func:`collect_participant_maps` (participants and analysis settings).
    bids_dir, fmriprep_dir : Path
        Raw dataset and fMRIPrep (or other preprocessing) derivatives.
    output_dir : Path
        The bids-w2v derivative dataset.
    scratch_dir : Path
        Folder for cleaned BOLD while computing.
    task, space, res : str
        Entities.
    options : CollectOptions, optional
        How the participant level found the runs (:func:`collect_options`); by default
        fMRIPrep's ``desc-preproc`` with the maps' confounds strategy.

    Returns
    -------
    files : list of Path
        Per-participant ``sub-<label>/func/..._stat-noiseceiling_statmap.*`` and the group
        mean ``task-..._stat-noiseceiling_statmap.*`` (absent when no one has a partner).
    notes : list of str
        Warnings (participants skipped).
    """
    from bids_w2v.encoding.folds import make_folds
    from bids_w2v.encoding.noise_ceiling import crossval_ceiling
    from bids_w2v.io.bids import collect_runs, load_layout
    from bids_w2v.io.bold import clean_bold
    from bids_w2v.io.confounds import ScanTrim, read_trim_table, scan_trims
    from bids_w2v.io.surface import space_kind

    metas = {s: m for layers in found.values() for maps in layers.values() for s, _, m in maps}
    first_map = next(iter(next(iter(found.values())).values()))[0][1]
    grid = load_grid(first_map)
    subjects = sorted(metas)
    meta = metas[subjects[0]]
    strategy = tuple(meta.get("ConfoundsStrategy", ("motion", "wm_csf", "high_pass")))
    selection = meta.get("ScanSelection", {})
    dummy = int(selection.get("DummyScans", 0) or 0)
    trim_spec = selection.get("TrimScans", [0, 0])
    trims = read_trim_table(Path(trim_spec)) if isinstance(trim_spec, str) else ScanTrim(*trim_spec)
    high_pass = meta.get("HighPassHz")
    if options is None:
        options = collect_options(confounds_strategy=strategy)
    cv = meta.get("CrossValidation", {})
    by_run = "one run out" in str(cv.get("Outer", ""))
    n_folds, gap = int(cv.get("NFolds", 5)), int(cv.get("GapScans", 0))
    notes: list[str] = []
    layout = load_layout(bids_dir, fmriprep_dir, validate=False)
    runs = {s: collect_runs(layout, s, task, space, res, options) for s in subjects}
    members: dict[tuple, list[str]] = defaultdict(list)
    for s in subjects:
        for key in _run_keys(runs[s]):
            members[key].append(s)
    shared = {k: v for k, v in members.items() if len(v) >= 2}
    partnered = [s for s in subjects if any(s in v for v in shared.values())]
    for s in subjects:
        if s not in partnered:
            note = (
                f"noise ceiling: sub-{s} shares no run (same stimuli at the same onsets) "
                "with another participant; skipped."
            )
            warnings.warn(note, stacklevel=2)
            notes.append(note)
    if not partnered:
        return [], notes
    map_space = _map_space([r for s in partnered for r in runs[s]], space_kind(space))
    scratch_dir = Path(scratch_dir)
    scratch_dir.mkdir(parents=True, exist_ok=True)
    key_id = {key: i for i, key in enumerate(shared)}
    kept: dict[tuple[str, tuple], np.ndarray] = {}
    for s in partnered:  # pass 1: clean once, keep on disk
        trims_s = scan_trims(runs[s], trims)
        for run, trim, key in zip(runs[s], trims_s, _run_keys(runs[s]), strict=True):
            if key not in shared:
                continue
            data, keep = clean_bold(
                run.data_files,
                map_space,
                tr=run.tr,
                confounds_strategy=strategy,
                dummy_scans=dummy,
                trim=tuple(trim),
                high_pass=high_pass,
            )
            np.save(scratch_dir / f"sub-{s}_run{key_id[key]}.npy", data)
            kept[(s, key)] = keep
    common_scans = {}
    sums = {}
    for key, subs in shared.items():
        scans = kept[(subs[0], key)]
        for s in subs[1:]:
            scans = np.intersect1d(scans, kept[(s, key)])
        common_scans[key] = scans
        for s in subs:
            rows = np.searchsorted(kept[(s, key)], scans)
            part = np.load(scratch_dir / f"sub-{s}_run{key_id[key]}.npy")[rows].astype(np.float64)
            sums[key] = part if key not in sums else sums[key] + part
    out = _Writer(output_dir, grid, task=task, space=space, res=res)
    ceilings = []
    for s in partnered:  # pass 2: each participant against the mean of the others
        ys, xs, groups = [], [], []
        for r, key in enumerate(_run_keys(runs[s])):
            if key not in shared:
                continue
            rows = np.searchsorted(kept[(s, key)], common_scans[key])
            y = np.load(scratch_dir / f"sub-{s}_run{key_id[key]}.npy")[rows].astype(np.float64)
            ys.append(y)
            xs.append((sums[key] - y) / (len(shared[key]) - 1))
            groups += [r] * len(y)
        y, x = np.concatenate(ys), np.concatenate(xs)
        use_runs = by_run and len(set(groups)) >= 2
        folds = make_folds(len(y), n_folds=n_folds, groups=groups if use_runs else None, gap=gap)
        ceiling = crossval_ceiling(y, x, folds)
        ceilings.append(ceiling)
        partners = sorted({p for k in shared for p in shared[k] if s in shared[k]} - {s})
        sidecar = {
            "Statistic": "noise_ceiling_pearson_r",
            "Description": "Pearson r between the participant's held-out cleaned BOLD and its "
            "cross-validated linear prediction from the mean cleaned BOLD of the other "
            "participants who heard the same stimuli (Millet, Caucheteux et al. 2022).",
            "Partners": [f"sub-{p}" for p in partners],
            "NumberOfScans": len(y),
            "CrossValidation": {
                "Outer": "leave one run out"
                if use_runs
                else f"{n_folds} contiguous unshuffled folds",
                "GapScans": gap,
            },
            "ConfoundsStrategy": list(strategy),
        }
        full = _on_grid(ceiling, map_space)
        if full.shape != grid.shape:
            raise InputError(
                f"The BOLD of sub-{s} ({full.shape}) is not on the grid of the participant maps "
                f"such as {first_map} ({grid.shape}); run the group level with the --space and "
                "input options (--desc-label, --mask, --bids-filter-file) of the participant "
                "level."
            )
        out.map(full, sidecar, stat="noiseceiling", desc=None, subject=s)
    group = _on_grid(mean_across_subjects(np.stack(ceilings)), map_space)
    out.map(
        group,
        {
            "Statistic": "mean_noise_ceiling_pearson_r",
            "Participants": partnered,
            "NumberOfSubjects": len(partnered),
            "Notes": notes,
            "Description": "Mean over participants of their noise-ceiling maps.",
        },
        stat="noiseceiling",
        desc=None,
    )
    return out.written, notes


def find_group_map(
    output_dir: Path,
    *,
    task: str,
    space: str,
    res: str | None,
    desc: str | None,
    stat: str,
) -> Path | None:
    """The group map of these entities in whichever form it was written (NIfTI, the hemi-L
    GIfTI of a surface pair, CIFTI of any density), or None."""
    for path in sorted(Path(output_dir).glob(f"task-{task}_*stat-{stat}_statmap.*")):
        name = path.name
        if path.suffix == ".json" or _entity(name, "hemi") == "R":
            continue
        if (
            _entity(name, "space") == space
            and _entity(name, "res") == res
            and _entity(name, "desc") == desc
        ):
            return path
    return None


def group_ceiling_path(output_dir: Path, task: str, space: str, res: str | None) -> Path:
    """Path of the group mean noise-ceiling map (its hemi-L file on surfaces).

    The map of any form (NIfTI, GIfTI, CIFTI) if written, else the NIfTI name.
    """
    found = find_group_map(
        output_dir, task=task, space=space, res=res, desc=None, stat="noiseceiling"
    )
    return found or statmap_path(
        output_dir, task=task, space=space, res=res, desc=None, stat="noiseceiling"
    )
