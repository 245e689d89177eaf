"""The configuration of each run, recorded as TOML in ``OUTPUT_DIR/logs/`` and read back.

The group level takes the participant level's analysis settings from these records
(:func:`recorded_config`) instead of asking for the participant flags again.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w

from bids_w2v.config import SECTIONS, ModelSpec, RunConfig, is_path_hint

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def _plain(value: Any) -> Any:
    """Turn dataclass values into TOML-serialisable builtins."""
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if value is None:
        return "none"
    return value


def config_to_toml(config: RunConfig) -> str:
    """Serialise a configuration as TOML (``None`` is written as ``"none"``).

    Parameters
    ----------
    config : RunConfig
        The configuration of this run.

    Returns
    -------
    str
        TOML text.
    """
    return tomli_w.dumps({"bids_w2v": _plain(config)})


#: fields added to a section after records were first written, with the value a record without
#: them meant (``--joint`` was fitted by himalaya's GroupRidgeCV before ``--joint-solver``)
LEGACY_VALUES = {("encoding", "joint_solver"): "himalaya"}


def _from_plain(cls: type, data: Mapping[str, Any]) -> Any:
    """Rebuild a dataclass from :func:`_plain` output (inverse of the TOML serialisation)."""
    hints = typing.get_type_hints(cls)
    section = next((name for name, c in SECTIONS.items() if c is cls), None)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            if (section, f.name) in LEGACY_VALUES:
                kwargs[f.name] = LEGACY_VALUES[section, f.name]
            continue
        value, hint = data[f.name], hints[f.name]
        if value == "none":
            value = None
        elif f.name in SECTIONS and cls is RunConfig:
            value = _from_plain(SECTIONS[f.name], value)
        elif f.name == "models":
            value = tuple(_from_plain(ModelSpec, m) for m in value)
        elif f.name == "derivatives":
            value = tuple((name, Path(path)) for name, path in value)
        elif isinstance(value, list):
            value = tuple(value)
        if isinstance(value, str) and is_path_hint(hint):
            value = Path(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def config_from_toml(text: str) -> RunConfig:
    """Read a configuration written by :func:`config_to_toml`.

    Parameters
    ----------
    text : str
        TOML text.

    Returns
    -------
    RunConfig
    """
    return _from_plain(RunConfig, tomllib.loads(text)["bids_w2v"])


#: the settings that make a participant map what it is (not where or how fast it was computed)
#: the sections the group level takes from the participant record (several models, or several
#: spaces, may share one output folder; these must agree among the records of one space)
SHARED_SETTINGS = ("inputs", "cleaning", "encoding")
#: fields of those sections that do not change the maps
RUNTIME_FIELDS = ("device", "batch_size", "save_features", "backend", "voxel_chunk")


def _analysis_value(config: RunConfig, name: str) -> Any:
    value = getattr(config, name)
    if dataclasses.is_dataclass(value):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)
                if f.name not in RUNTIME_FIELDS}  # fmt: skip
    return value


def recorded_config(
    output_dir: Path,
    level: str = "participant",
    *,
    space: str | None = None,
    res: str | None = None,
) -> RunConfig | None:
    """The configuration the ``level`` runs recorded in ``OUTPUT_DIR/logs/``.

    Several participant jobs (one per participant, a SLURM array; one per model) each write one;
    the input, cleaning and cross-validation settings of those of one space must agree, since
    the group level re-reads and cleans the BOLD as they did (the noise ceiling).

    Parameters
    ----------
    output_dir : Path
        The bids-w2v derivative dataset.
    level : str
        ``participant`` or ``group``.
    space, res : str, optional
        Only the records of this space (and resolution).

    Returns
    -------
    RunConfig or None
        The newest record, or None when there is none (outputs of bids-w2v < 0.2).

    Raises
    ------
    InputError
        If a record cannot be read, or two records disagree on a shared setting.
    """
    from bids_w2v.errors import InputError

    files = sorted((Path(output_dir) / "logs").glob(f"config-{level}-*.toml"))
    configs = []
    for path in files:
        try:
            configs.append((path, config_from_toml(path.read_text())))
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"The recorded configuration {path} cannot be read ({exc}). Remove it if it "
                "is not from a bids-w2v run whose maps are in this folder, or re-run that "
                "participant level."
            ) from None
    if space is not None:
        configs = [(p, c) for p, c in configs if (c.space, c.res) == (space, res)]
    if not configs:
        return None
    newest_path, newest = configs[-1]
    for path, other in configs[:-1]:
        for name in SHARED_SETTINGS:
            if _analysis_value(other, name) != _analysis_value(newest, name):
                raise InputError(
                    f"The participant runs recorded in {path.name} and {newest_path.name} "
                    f"(in {path.parent}) used different '{name}' settings, so their maps "
                    "cannot be combined (the group level re-reads and cleans the BOLD as the "
                    "participant level did). Re-run the participant level of the odd "
                    "participants with the same options, or write them to separate output "
                    "folders."
                )
    return newest
