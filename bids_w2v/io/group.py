"""Collect participant-level maps and write group-level maps."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import nibabel as nb
import numpy as np

from bids_w2v.encoding.stats import circular_mean_layer, mean_across_subjects
from bids_w2v.errors import InputError
from bids_w2v.io.atomic import write_json, write_nifti
from bids_w2v.io.derivatives import layer_desc, statmap_path
from bids_w2v.io.maps import peak_layer


def _entity(name: str, key: str) -> str | None:
    match = re.search(rf"(?:^|_){key}-([A-Za-z0-9]+)", name)
    return match.group(1) if match else None


def collect_participant_maps(
    output_dir: Path,
    task: str | None,
    space: str,
    res: str | None,
    participants: Sequence[str] = (),
) -> dict[str, dict[str, list[tuple[str, Path, dict]]]]:
    """Find participant brain-score maps written by bids-w2v.

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
        Model label -> layer name -> list of (subject, map path, sidecar), sorted by subject.
    """
    found: dict = defaultdict(lambda: defaultdict(list))
    tasks = set()
    for sidecar in sorted(Path(output_dir).glob("sub-*/func/sub-*_stat-r_statmap.json")):
        name = sidecar.name
        if _entity(name, "space") != space or _entity(name, "res") != res:
            continue
        sub = _entity(name, "sub")
        if participants and sub not in participants:
            continue
        if task is not None and _entity(name, "task") != task:
            continue
        tasks.add(_entity(name, "task"))
        meta = json.loads(sidecar.read_text())
        nii = sidecar.with_name(name[: -len(".json")] + ".nii.gz")
        if nii.exists():
            found[meta["ModelLabel"]][meta["LayerName"]].append((sub, nii, meta))
    if not found:
        raise InputError(
            f"No participant-level brain-score maps (sub-*/func/*_stat-r_statmap.nii.gz) in "
            f"space '{space}'{':res-' + res if res else ''}"
            f"{' for task ' + task if task else ''} under {output_dir}. Run the participant "
            "level first with the same OUTPUT_DIR, --space and --task."
        )
    if len(tasks) > 1:
        raise InputError(
            f"{output_dir} holds maps of several tasks ({', '.join(sorted(tasks))}); choose one "
            "with --task."
        )
    return {m: dict(layers) for m, layers in found.items()}


def write_group_maps(
    layer_maps: Mapping[str, Sequence[tuple[str, Path, dict]]],
    *,
    output_dir: Path,
    task: str,
    space: str,
    res: str | None,
    model_label: str,
) -> list[Path]:
    """Write per-layer mean maps, the peak layer of the mean, and the circular-mean peak.

    Parameters
    ----------
    layer_maps : mapping
        Layer name -> list of (subject, map path, sidecar) (from
        :func:`collect_participant_maps`).
    output_dir : Path
        The bids-w2v derivative dataset.
    task, space, res, model_label : str
        Entities of the outputs.

    Returns
    -------
    list of Path
        Files written.
    """
    layers = sorted(layer_maps, key=lambda n: layer_maps[n][0][2]["LayerIndex"])
    indices = [int(layer_maps[n][0][2]["LayerIndex"]) for n in layers]
    subjects = sorted({s for n in layers for s, _, _ in layer_maps[n]})
    ref = nb.load(str(layer_maps[layers[0]][0][1]))
    stack = np.full((len(layers), len(subjects)) + ref.shape[:3], np.nan)
    for i, name in enumerate(layers):
        for sub, path, _ in layer_maps[name]:
            img = nb.load(str(path))
            if img.shape[:3] != ref.shape[:3] or not np.allclose(img.affine, ref.affine, atol=1e-3):
                raise InputError(
                    f"{path} is not on the same grid as {layer_maps[layers[0]][0][1]}; the group "
                    "level needs every participant in the same space and resolution."
                )
            stack[i, subjects.index(sub)] = np.asarray(img.dataobj, dtype=np.float64)
    common = {"task": task, "space": space, "res": res}
    meta0 = {
        k: v
        for k, v in layer_maps[layers[0]][0][2].items()
        if k in ("Model", "ModelLabel", "RandomInit", "Seed", "WeightsSHA256")
    }
    meta0["Participants"] = subjects
    written = []

    def _write(values: np.ndarray, sidecar: dict, **entities) -> None:
        img = nb.Nifti1Image(values.astype(np.float32), ref.affine, ref.header)
        img.header.set_data_dtype(np.float32)
        write_json(statmap_path(output_dir, extension=".json", **common, **entities), sidecar)
        written.append(write_nifti(statmap_path(output_dir, **common, **entities), img))

    means = np.stack([mean_across_subjects(stack[i]) for i in range(len(layers))])
    for i, name in enumerate(layers):
        _write(
            means[i],
            {
                **meta0,
                "LayerName": name,
                "LayerIndex": indices[i],
                "Statistic": "mean_pearson_r",
                "NumberOfSubjects": len(subjects),
            },
            stat="meanr",
            desc=layer_desc(model_label, name),
        )
    peak = peak_layer(means.reshape(len(layers), -1), indices).reshape(ref.shape[:3])
    layer_table = {str(i): n for n, i in zip(layers, indices, strict=True)}
    _write(
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
    sub_peaks = peak_layer(stack.reshape(len(layers), -1), indices)
    circ = circular_mean_layer(sub_peaks.reshape(len(subjects), -1), len(indices))
    _write(
        circ.reshape(ref.shape[:3]),
        {
            **meta0,
            "Statistic": "circular_mean_peak_layer",
            "Layers": layer_table,
            "Description": "Per-participant peak layers combined by the circular mean of "
            "Millet, Caucheteux et al. 2022: angle(mean exp(2 i pi k / (K + 1))).",
        },
        stat="circpeaklayer",
        desc=layer_desc(model_label),
    )
    return written
