"""From parsed arguments to the frozen :class:`~bids_w2v.config.RunConfig`.

The parser's destinations are the configuration's field names, so :func:`build_config` fills
every settings section with :func:`bids_w2v.config.settings_from`; only the values that combine
several options (the models, the space and its resolution, the default confounds strategy, the
scan trims, the devices, the plugin file, the atlas) are resolved here, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bids_w2v.config import (
    DEFAULT_CONFOUNDS,
    DEFAULT_MODEL,
    NO_CONFOUNDS,
    SECTIONS,
    ModelSpec,
    RunConfig,
    default,
    settings_from,
)
from bids_w2v.errors import InputError

RANDOM_SUFFIX = ":random"


def split_model(value: str, random_init: bool) -> tuple[str, bool]:
    """A ``--model`` value as (name, random weights): ``NAME:random`` is the random-init twin,
    otherwise ``--random-init`` decides (shared by ``bids-w2v`` and ``bids-w2v-abx``)."""
    if value.endswith(RANDOM_SUFFIX):
        return value[: -len(RANDOM_SUFFIX)], True
    return value, random_init


def _model_specs(values: dict) -> tuple[ModelSpec, ...]:
    """One ModelSpec per --model value (``NAME:random`` or --random-init: random weights)."""
    from bids_w2v.features.families import ACOUSTIC_TYPES
    from bids_w2v.workflows.base import model_labels

    specs = []
    features_dir = values.get("features_dir")
    for value in values.get("model") or ([] if features_dir else [DEFAULT_MODEL]):
        name, random_init = split_model(value, values.get("random_init", False))
        if name in ACOUSTIC_TYPES and not value.endswith(RANDOM_SUFFIX):
            random_init = False  # --random-init does not apply to a baseline without weights
        specs.append(
            settings_from(ModelSpec, values, name=name, random_init=random_init, features_dir=None)
        )
    if features_dir:  # every feature space found there, scored like a model
        from bids_w2v.features.precomputed import find_feature_spaces

        for label in find_feature_spaces(features_dir):
            specs.append(
                settings_from(
                    ModelSpec,
                    values,
                    name=label,
                    random_init=False,
                    features_dir=Path(features_dir),
                )
            )
    model_labels(specs)  # two models writing the same maps: an error now, not after hours
    return tuple(specs)


def _joint(values: dict, specs: Sequence[ModelSpec]) -> tuple[str, ...]:
    """``--joint`` resolved against the run's models: canonical ``label[:layer]`` strings."""
    from bids_w2v.encoding.joint import parse_joint
    from bids_w2v.workflows.base import model_labels

    given = values.get("joint") or ()
    if not given:
        return ()
    names = list(values.get("model") or [DEFAULT_MODEL])
    try:
        spaces = parse_joint(given, dict(zip(names, model_labels(specs), strict=True)))
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return tuple(str(s) for s in spaces)


def _devices(values: dict, analysis_level: str) -> tuple[str, str]:
    """The speech model's and the ridge's devices, ``auto`` resolved (participant level)."""
    device = values.get("device", default(SECTIONS["features"], "device"))
    backend = values.get("backend", default(SECTIONS["encoding"], "backend"))
    if analysis_level != "participant":
        return device, "cpu"
    from bids_w2v.features.models import resolve_device

    resolved = resolve_device(device)  # an unavailable GPU is an error now, not in a node
    if device != "auto":
        return resolved, device
    return resolved, resolved if backend == "torch" else "cpu"


def _cleaning(values: dict) -> dict:
    """Resolve the default confounds strategy and the scan trims; check the HRF options."""
    from bids_w2v.bold.confounds import ScanTrim, check_strategy

    strategy = values.get("confounds_strategy")
    if strategy is None:  # already denoised derivatives have no confounds
        desc = values.get("desc_label", default(SECTIONS["inputs"], "desc_label"))
        strategy = DEFAULT_CONFOUNDS if desc == "preproc" else NO_CONFOUNDS
    hrf_model, fir_delays = values.get("hrf_model"), values.get("fir_delays")
    if hrf_model == "fir" and not fir_delays:
        raise InputError(
            "--hrf fir needs --fir-delays: the delays, in scans, of the copies of every "
            "feature (e.g. --fir-delays 1 2 3 4, voxelwise modelling's habit)."
        )
    if fir_delays and hrf_model != "fir":
        raise InputError(
            f"--fir-delays only applies to --hrf fir (got --hrf {hrf_model}); drop it or "
            "use --hrf fir."
        )
    trim = values.get("trim_scans")
    return {
        "confounds_strategy": check_strategy(strategy),
        "trim_scans": (trim.start, trim.end) if isinstance(trim, ScanTrim) else (0, 0),
        "trim_scans_file": trim.absolute() if isinstance(trim, Path) else None,
    }


def build_config(args) -> RunConfig:
    """Turn parsed arguments into the frozen :class:`~bids_w2v.config.RunConfig`.

    Parameters
    ----------
    args : argparse.Namespace
        From :func:`bids_w2v.cli.parser.build_parser`.

    Returns
    -------
    RunConfig
    """
    from bids_w2v.cli.plugin import load_plugin_file
    from bids_w2v.group.roi import resolve_roi_atlas
    from bids_w2v.inputs.layout import parse_space

    values = {k: v for k, v in vars(args).items() if v is not None}
    values.setdefault("work_dir", Path("work"))
    values["fir_delays"] = values.get("fir_delays") or ()
    space, res = parse_space(values.pop("space", default(RunConfig, "space")))
    level = values["analysis_level"]
    feature_device, encoding_device = _devices(values, level)
    plugin, plugin_args = None, {}
    if values.get("use_plugin") is not None:
        plugin, plugin_args = load_plugin_file(values["use_plugin"])
    atlas = values.get("roi_atlas")
    models = _model_specs(values)
    resolved = {
        "features": {"device": feature_device},
        "cleaning": _cleaning(values),
        "encoding": {"device": encoding_device, "joint": _joint(values, models)},
        "group": {
            "roi_atlas": (
                resolve_roi_atlas(atlas, space=space, res=res)
                if atlas and level == "group"
                else None
            )
        },
    }
    sections = {
        name: settings_from(cls, values, **resolved.get(name, {})) for name, cls in SECTIONS.items()
    }
    return settings_from(
        RunConfig,
        values,
        space=space,
        res=res,
        models=models,
        derivatives=tuple((name, path.absolute()) for name, path in values["derivatives"]),
        plugin=plugin,
        plugin_args=plugin_args,
        **sections,
    )


def check_output_dir(bids_dir: Path, output_dir: Path, derivatives: Sequence[Path] = ()) -> None:
    """Refuse an output folder that would write into an input dataset.

    OUTPUT_DIR may not be, contain or lie inside the raw dataset (except under its
    ``derivatives/``), nor be, contain or lie inside an input derivatives folder (fMRIPrep's).
    """
    bids, out = bids_dir.resolve(), output_dir.resolve()
    if out == bids or out in bids.parents or out == bids / "derivatives":
        raise InputError(
            f"OUTPUT_DIR {output_dir} is the BIDS dataset {bids_dir}, its derivatives/ folder or "
            "one of their parents; bids-w2v never writes into its inputs. Use e.g. "
            "BIDS_DIR/derivatives/bids-w2v."
        )
    if bids in out.parents and (bids / "derivatives") not in out.parents:
        raise InputError(
            f"OUTPUT_DIR {output_dir} is inside the raw dataset {bids_dir} but not under its "
            "derivatives/ folder; use BIDS_DIR/derivatives/bids-w2v or a folder elsewhere."
        )
    for deriv in derivatives:
        deriv = Path(deriv).resolve()
        if out == deriv or out in deriv.parents or deriv in out.parents:
            raise InputError(
                f"OUTPUT_DIR {output_dir} overlaps the input derivatives {deriv}; bids-w2v "
                "never writes into its inputs. Use a folder of its own, e.g. "
                "BIDS_DIR/derivatives/bids-w2v."
            )
