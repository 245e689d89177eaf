"""``--bids-filter-file``: fMRIPrep's JSON filters applied to the pybids queries.

The file is a JSON object whose keys name the queries bids-w2v makes and whose values are
dictionaries of BIDS entities passed to pybids ``BIDSLayout.get()`` (fMRIPrep's semantics)::

    {"bold": {"session": "01", "run": [1, 2], "acquisition": null},
     "events": {"session": "01"}}

Keys: ``bold`` (preprocessed BOLD), ``mask`` (brain masks), ``confounds`` (confounds files),
``events`` (raw events files). As in fMRIPrep, ``null`` matches files without that entity and
``"*"`` files with any value of it. Only BIDS entity names are accepted (not pybids options such
as ``scope`` or ``return_type``), and values are labels, never paths, so a filter cannot lead
bids-w2v outside the dataset.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bids.layout import Query

from bids_w2v.errors import InputError

QUERY_KEYS = ("bold", "mask", "confounds", "events")
# entities the query itself sets: a filter may not override them
_RESERVED = {"suffix", "extension", "datatype", "subject", "task", "space", "desc"}


@cache
def _entity_names() -> frozenset[str]:
    from bids.layout.models import Config

    return frozenset(Config.load("bids").entities) | frozenset(Config.load("derivatives").entities)


def _value(value: object, *, where: str, path: Path) -> object:
    if value is None:
        return Query.NONE
    if value == "*":
        return Query.ANY
    if isinstance(value, list):
        return [_value(v, where=where, path=path) for v in value]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputError(
            f"The BIDS filter file {path}: {where} is {json.dumps(value)}; entity values are "
            'labels (strings or numbers), lists of labels, null (no such entity) or "*" (any).'
        )
    text = str(value)
    if "/" in text or "\\" in text or ".." in text or not text:
        raise InputError(
            f"The BIDS filter file {path}: {where} is {json.dumps(value)}, which is not a BIDS "
            "label (labels hold no path separators or '..'). Filters select files inside the "
            "dataset by their entities; fix the value."
        )
    return value


def read_filter_file(path: Path) -> Mapping[str, Mapping[str, object]]:
    """Read and check a ``--bids-filter-file``.

    Parameters
    ----------
    path : Path
        JSON file with fMRIPrep's filter format.

    Returns
    -------
    mapping
        Query name (``bold``, ``mask``, ``confounds``, ``events``) -> pybids filters
        (``null`` turned into ``Query.NONE``, ``"*"`` into ``Query.ANY``).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"The BIDS filter file {path} does not exist. Fix the path.") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(
            f"The BIDS filter file {path} is not valid JSON ({exc}). It must be an object such "
            'as {"bold": {"session": "01"}} (fMRIPrep\'s --bids-filter-file format).'
        ) from None
    if not isinstance(data, dict):
        raise InputError(
            f"The BIDS filter file {path} holds a {type(data).__name__}, not a JSON object such "
            'as {"bold": {"session": "01"}}.'
        )
    unknown = [k for k in data if k not in QUERY_KEYS]
    if unknown:
        raise InputError(
            f"The BIDS filter file {path} has unknown key(s) {', '.join(map(repr, unknown))}; "
            f"bids-w2v's queries are {', '.join(QUERY_KEYS)} (fMRIPrep keys such as t1w or "
            "fmap do not apply). Remove or rename them."
        )
    filters = {}
    names = _entity_names()
    for key, entities in data.items():
        if not isinstance(entities, dict):
            raise InputError(
                f"The BIDS filter file {path}: '{key}' must map to an object of entities, "
                f'e.g. {{"session": "01"}}, not {json.dumps(entities)}.'
            )
        bad = [e for e in entities if e not in names or e in _RESERVED]
        if bad:
            raise InputError(
                f"The BIDS filter file {path}: '{key}' filters on {', '.join(map(repr, bad))}, "
                "which bids-w2v does not accept (subject, task, space, desc, suffix, extension "
                "and datatype are set by the command line; other names must be BIDS entities "
                "such as session, run, acquisition, echo, res, den). Fix the key."
            )
        filters[key] = MappingProxyType(
            {e: _value(v, where=f"'{key}.{e}'", path=path) for e, v in entities.items()}
        )
    return MappingProxyType(filters)


def query_filters(filters: Mapping[str, Mapping[str, object]] | None, key: str) -> dict:
    """The pybids filters of one query (empty when none were given)."""
    return dict(filters.get(key, {})) if filters else {}


@dataclass(frozen=True)
class CollectOptions:
    """How a participant's runs are found (:func:`bids_w2v.inputs.layout.collect_runs`).

    Attributes
    ----------
    desc : str
        ``desc-`` label of the preprocessed BOLD (``--desc-label``; ``preproc`` for fMRIPrep,
        ``clean`` for the Narratives ``afni-nosmooth`` derivatives).
    filters : mapping or None
        From :func:`read_filter_file`.
    stimulus_map : DataFrame or None
        From :func:`bids_w2v.inputs.stimulus_map.read_stimulus_map` (replaces ``events.tsv``).
    stimulus_map_file : Path or None
        Its file (for messages and provenance).
    dropped_scans : int
        Volumes the preprocessing removed from the start of every run (``--dropped-scans``):
        onsets move ``dropped_scans * TR`` seconds earlier.
    need_confounds : bool
        Whether the confounds strategy reads an fMRIPrep confounds file.
    mask : Path or None
        A brain mask for every run (``--mask``) instead of the derivatives' masks.
    """

    desc: str = "preproc"
    filters: Mapping[str, Mapping[str, object]] | None = None
    stimulus_map: Any = None
    stimulus_map_file: Path | None = None
    dropped_scans: int = 0
    need_confounds: bool = False
    mask: Path | None = None


def collect_options(inputs: Any, cleaning: Any) -> CollectOptions:
    """The options of :func:`~bids_w2v.inputs.layout.collect_runs`, files read and checked.

    The one place the input settings become collection options, for the participant level
    and for the group level's noise ceiling (which re-reads the same BOLD).

    Parameters
    ----------
    inputs : bids_w2v.config.InputSettings
        ``--desc-label``, ``--bids-filter-file``, ``--stimulus-map``, ``--mask``,
        ``--dropped-scans``.
    cleaning : bids_w2v.config.CleaningSettings
        Whether the confounds strategy reads the confounds files.

    Returns
    -------
    CollectOptions

    Raises
    ------
    InputError
        If ``--mask`` does not exist, or the filter file or stimulus map is invalid.
    """
    from bids_w2v.inputs.stimulus_map import read_stimulus_map

    if inputs.mask is not None and not Path(inputs.mask).is_file():
        raise InputError(f"The --mask file {inputs.mask} does not exist. Fix the path.")
    return CollectOptions(
        desc=inputs.desc_label,
        filters=read_filter_file(inputs.bids_filter_file) if inputs.bids_filter_file else None,
        stimulus_map=read_stimulus_map(inputs.stimulus_map) if inputs.stimulus_map else None,
        stimulus_map_file=inputs.stimulus_map,
        dropped_scans=inputs.dropped_scans,
        need_confounds=cleaning.uses_confounds,
        mask=inputs.mask,
    )
