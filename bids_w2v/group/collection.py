"""Collect participant-level maps and read them for the group level.

Maps come in the participant level's form: NIfTI volumes, one GIfTI per hemisphere (read as one
map, left then right: :func:`load_map`) or CIFTI dense scalars. Every read goes through
:func:`load_map` / :func:`load_grid`. The group maps are written back in the same form by
:mod:`bids_w2v.group.maps` (per model), :mod:`bids_w2v.group.comparison` (between models)
and :mod:`bids_w2v.group.noise_ceiling` (noise ceiling).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd
from bids.layout.writing import build_path

from bids_w2v.errors import InputError
from bids_w2v.inputs.annex import not_fetched
from bids_w2v.inputs.preflight import Problem, check_files, problems_error, reading
from bids_w2v.outputs.atomic import write_json, write_text
from bids_w2v.spaces import MapSpace, space_for, space_of_file

TABLE_PATTERN = (
    "task-{task}[_space-{space}][_res-{res}][_desc-{desc}]_stat-{stat}"
    "_{suffix<summary>|summary}{extension<.tsv|.json>|.tsv}"
)


MAP_FORMS = tuple(space_for(kind).extension for kind in ("volume", "surface", "cifti"))


PROVENANCE_KEYS = ("Model", "ModelLabel", "RandomInit", "Seed", "WeightsSHA256")


def entity(name: str, key: str) -> str | None:
    match = re.search(rf"(?:^|_){key}-([A-Za-z0-9]+)", name)
    return match.group(1) if match else None


def hemisphere_files(path: Path) -> tuple[Path, ...]:
    """The files of one map: ``(path,)``, or the ``hemi-L`` and ``hemi-R`` GIfTIs of a surface
    map named by either of them."""
    return space_of_file(path).map_files(Path(path))


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
    def space(self) -> type[MapSpace]:
        """The class of the maps' space (:mod:`bids_w2v.spaces`)."""
        return space_for(self.form)

    @property
    def extension(self) -> str:
        """Extension of maps on this grid."""
        return self.space.extension

    @property
    def hemis(self) -> tuple[str | None, ...]:
        """The hemisphere entity of each file of a map (``(None,)``: one file)."""
        return self.space.hemis

    def image(self) -> nb.Nifti1Image:
        """The reference NIfTI (volumes only)."""
        return nb.load(str(self.files[0]))

    def split(self, values: np.ndarray) -> list[np.ndarray]:
        """Values per file (per hemisphere on GIfTI surfaces; the 3-D array of a volume)."""
        flat = np.asarray(values, dtype=np.float64).reshape(-1)
        parts = np.split(flat, np.cumsum(self.sizes)[:-1])
        return [parts[0].reshape(self.shape)] if len(parts) == 1 else parts


def load_map(path: Path) -> np.ndarray:
    """The values of a map (float64; NaN outside the participant's mask).

    A NIfTI gives its 3-D array, a CIFTI its grayordinates, a GIfTI (either hemisphere's file)
    the left then the right hemisphere's vertices.
    """
    from bids_w2v.outputs.maps import load_map_data

    files = hemisphere_files(Path(path))
    with reading(files):  # damaged since the pre-flight: one paragraph naming it
        parts = [load_map_data(f) for f in files]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def load_grid(path: Path) -> MapGrid:
    """A map's form and geometry (shape and affine, vertices, grayordinates)."""
    space = space_of_file(path)
    files = space.map_files(Path(path))
    shape, sizes, affine = space.map_geometry(files)
    den = None if affine is not None else entity(files[0].name, "den")  # volumes: no density
    return MapGrid(space.kind, files, shape, sizes, affine, den)


def same_grid(a: MapGrid, b: MapGrid) -> bool:
    """Whether two maps have the same form and geometry."""
    if a.form != b.form or a.shape != b.shape or a.sizes != b.sizes:
        return False
    return a.space.same_geometry(a, b)


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


def map_tasks(path: Path, meta: Mapping) -> tuple[str, ...]:
    """The tasks a participant map was fitted on: its sidecar's ``Tasks``, or (maps of
    bids-w2v < 0.3) the task entity of its name."""
    tasks = meta.get("Tasks") or [entity(Path(path).name, "task")]
    return tuple(str(t) for t in tasks)


def participant_tasks(found: Mapping[str, Mapping[str, Sequence]]) -> dict[str, tuple[str, ...]]:
    """Each participant's tasks in the maps of :func:`collect_participant_maps`."""
    return {
        s: map_tasks(p, m) for layers in found.values() for maps in layers.values()
        for s, p, m in maps
    }  # fmt: skip


def group_tasks(found: Mapping[str, Mapping[str, Sequence]]) -> tuple[str, ...]:
    """Every task of the participants combined (alphabetical): the group outputs' ``task-``
    label is :func:`bids_w2v.outputs.names.task_label` of these."""
    return tuple(sorted({t for tasks in participant_tasks(found).values() for t in tasks}))


def _choose_task_sets(candidates: Sequence[tuple], output_dir: Path) -> dict[str, frozenset[str]]:
    """Per subject, the task set of the maps to combine: the one holding every other.

    A participant fitted on each story alone and on all of them jointly has both in the folder:
    the joint map is used. Maps of disjoint sets (each story alone) are ambiguous.
    """
    sets: dict[str, dict[frozenset, str]] = defaultdict(dict)
    for _, _, sub, path, _, tasks in candidates:
        sets[sub].setdefault(frozenset(tasks), entity(Path(path).name, "task"))
    chosen = {}
    for sub, options in sets.items():
        union = frozenset().union(*options)
        if union not in options:
            labels = ", ".join(f"task-{label}" for label in sorted(options.values()))
            raise InputError(
                f"sub-{sub} has participant maps of several sets of tasks under {output_dir} "
                f"({labels}) and none holds all the others, so the group level cannot tell "
                "which to combine. Choose with --task (a map is used when all its tasks are "
                "among those given), re-run the participant level on all the stories jointly "
                "(its default), or write the analyses to separate output folders."
            )
        chosen[sub] = union
    return chosen


@dataclass(frozen=True)
class MapScan:
    """The participant maps of one statistic found by :func:`scan_participant_maps`."""

    maps: list[tuple[str, Path, dict]]  # (subject, map path, sidecar), by sidecar name
    other_spaces: dict[str, set[str]]  # subject -> "space[:res-<res>]" of its maps elsewhere


def scan_participant_maps(
    output_dir: Path,
    *,
    stat: str,
    space: str,
    res: str | None,
    participants: Sequence[str] = (),
    task: str | None = None,
    other_tasks: Collection[str] = (),
    keep: Callable[[Path, Mapping], bool] | None = None,
) -> MapScan:
    """Every participant map ``sub-*/func/sub-*[_task-<task>_*]_stat-<stat>_statmap.*`` in
    ``space``/``res`` (the hemi-L file of a GIfTI pair), found from its JSON sidecar: the one
    scan of :func:`collect_participant_maps` and :func:`bids_w2v.group.joint.collect_joint_maps`.

    Only subjects in ``participants`` (all by default) and maps for which ``keep(sidecar path,
    sidecar)`` holds are taken; the files of those taken are checked. Subjects' maps in other
    spaces are recorded when their ``task-`` entity is in ``other_tasks`` (or it is empty).

    Raises
    ------
    InputError
        A sidecar that is not JSON, or map files damaged or not fetched (all of them at once).
    """
    label = f"task-{task}_*" if task else ""
    pattern = f"sub-*/func/sub-*_{label}stat-{stat}_statmap.json"
    maps, other_spaces, damaged = [], defaultdict(set), []
    for sidecar in sorted(Path(output_dir).glob(pattern)):
        name = sidecar.name
        sub = entity(name, "sub")
        if participants and sub not in participants:
            continue
        if entity(name, "space") != space or entity(name, "res") != res:
            if other_tasks and entity(name, "task") not in other_tasks:
                continue  # (a joint label in another space is not told apart: not needed)
            other_res = entity(name, "res")
            other_spaces[sub].add(
                f"{entity(name, 'space')}{':res-' + other_res if other_res else ''}"
            )
            continue
        if entity(name, "hemi") == "R":  # a surface map is named by its hemi-L file
            continue
        try:
            meta = json.loads(sidecar.read_text())
        except (OSError, ValueError) as exc:  # truncated, not fetched, not JSON
            damaged.append(
                Problem(sidecar, f"cannot be read as JSON ({exc})", not_fetched(sidecar))
            )
            continue
        if keep is not None and not keep(sidecar, meta):
            continue
        stem = name[: -len(".json")]
        files = [sidecar.with_name(stem + ext) for ext in MAP_FORMS]
        path = next((m for m in files if m.exists() or m.is_symlink()), None)
        if path is not None:
            damaged += check_files(space_of_file(path).map_files(path))
            maps.append((sub, path, meta))
    if damaged:  # every unreadable map at once, before the graph runs
        raise problems_error(
            damaged,
            what="participant-level file(s)",
            fix="Re-run the participant level of those participants with the same OUTPUT_DIR "
            "(a full disk or an interrupted job leaves truncated maps), or exclude them with "
            "--participant-label.",
        )
    return MapScan(maps, dict(other_spaces))


def collect_participant_maps(
    output_dir: Path,
    task: str | Sequence[str] | None,
    space: str,
    res: str | None,
    participants: Sequence[str] = (),
) -> dict[str, dict[str, list[tuple[str, Path, dict]]]]:
    """Find participant brain-score maps written by bids-w2v (from their JSON sidecars).

    Participants who heard different sets of stories are combined: each participant's map is
    the one fitted on the most of the chosen tasks (its sidecar's ``Tasks``).

    Parameters
    ----------
    output_dir : Path
        The bids-w2v derivative dataset.
    task : str, sequence of str or None
        ``--task``: a map is used when all its tasks are among these (None or empty: any).
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
        No map, maps of one subject on sets of tasks none of which holds the others, or a
        subject whose maps are only in another space.
    """
    wanted_tasks = {
        t.removeprefix("task-") for t in ([task] if isinstance(task, str) else task or ())
    }

    def keep(sidecar: Path, meta: Mapping) -> bool:
        wanted = not wanted_tasks or set(map_tasks(sidecar, meta)) <= wanted_tasks
        return wanted and "ModelLabel" in meta and "LayerName" in meta

    scan = scan_participant_maps(
        output_dir, stat="r", space=space, res=res, participants=participants,
        other_tasks=wanted_tasks, keep=keep,
    )  # fmt: skip
    candidates = [
        (meta["ModelLabel"], meta["LayerName"], sub, path, meta, map_tasks(path, meta))
        for sub, path, meta in scan.maps
    ]
    chosen = _choose_task_sets(candidates, Path(output_dir))
    found: dict = defaultdict(lambda: defaultdict(list))
    for model, layer, sub, path, meta, tasks in candidates:
        if frozenset(tasks) == chosen[sub]:
            found[model][layer].append((sub, path, meta))
    wanted = f"{space}{':res-' + res if res else ''}"
    if not found:
        elsewhere = sorted({s for spaces in scan.other_spaces.values() for s in spaces})
        named = ", ".join(sorted(wanted_tasks))
        raise InputError(
            "No participant-level brain-score maps (sub-*/func/*_stat-r_statmap.nii.gz, "
            ".func.gii per hemisphere or .dscalar.nii) in "
            f"space '{wanted}'{' for task(s) ' + named if named else ''} under {output_dir}"
            f"{' (maps exist in: ' + ', '.join(elsewhere) + ')' if elsewhere else ''}. Run the "
            "participant level first with the same OUTPUT_DIR, --space and --task, or give the "
            "group level the --space of the participant maps."
        )
    have = {s for layers in found.values() for maps in layers.values() for s, _, _ in maps}
    missing = sorted(set(scan.other_spaces) - have)
    if missing:
        raise InputError(
            f"The participant maps under {output_dir} are not all in one space: sub-"
            f"{', sub-'.join(missing)} only has maps in "
            f"{', '.join(sorted(scan.other_spaces[missing[0]]))}"
            f" while the group level combines space '{wanted}'. Re-run the participant level of "
            "those subjects with the same --space, or restrict the group level to the others "
            "with --participant-label."
        )
    return {m: dict(layers) for m, layers in found.items()}


def model_order(found: Mapping[str, Mapping[str, Sequence]]) -> list[str]:
    """Models with trained weights first (then by label): comparisons are trained - random."""

    def key(label: str) -> tuple:
        meta = next(iter(found[label].values()))[0][2]
        return (bool(meta.get("RandomInit", False)), label)

    return sorted(found, key=key)


def comparison_pairs(found: Mapping[str, Mapping[str, Sequence]]) -> list[tuple[str, str]]:
    """Every pair of models (A, B), trained models first."""
    return list(combinations(model_order(found), 2))


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
        if path.suffix == ".json" or entity(name, "hemi") == "R":
            continue
        if (
            entity(name, "space") == space
            and entity(name, "res") == res
            and entity(name, "desc") == desc
        ):
            return path
    return None
