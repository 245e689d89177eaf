"""Frozen configuration of one bids-w2v run: the only path a parameter travels.

A parameter travels once: the command-line parser (its destination is the field's name) ->
:func:`settings_from` builds these frozen dataclasses -> ``init_*_wf(...)`` receives the
settings objects -> nodes are built from them (:func:`node_inputs`). Every default is written
here, once; the parser reads it with :func:`default`. Every ``auto`` is resolved here, once
(:meth:`EncodingSettings.__post_init__`; the machine's CPUs and memory in
:meth:`RunConfig.__post_init__`). The whole configuration is recorded in the output's
``logs/`` folder (:mod:`bids_w2v.outputs.record`), from which the group level takes the
participant level's settings.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bids_w2v.encoding.ridge import DEFAULT_ALPHAS, resolve_alpha_search

DEFAULT_MODEL = "facebook/wav2vec2-base"
DEFAULT_SPACE = "MNI152NLin2009cAsym"
DEFAULT_CONFOUNDS = ("motion", "wm_csf", "high_pass")
#: the BOLD is used as is (already denoised derivatives)
NO_CONFOUNDS = ("none",)


@dataclass(frozen=True)
class ModelSpec:
    """Which speech model, and whether its weights are the trained or a random-init twin."""

    name: str = DEFAULT_MODEL
    random_init: bool = False
    seed: int = 0
    allow_download: bool = False
    allow_pickle: bool = False
    #: precomputed features (``--features-dir``): ``name`` is then a feature space found there
    features_dir: Path | None = None


@dataclass(frozen=True)
class FeatureSettings:
    """How activations are extracted: layers and the paper's windowing (10 s, 5 s stride)."""

    layers: str = "all"
    window_s: float | None = 10.0
    stride_s: float = 5.0
    batch_size: int = 4
    causal: bool = False
    dtype: str = "float32"
    device: str = "auto"
    save_features: bool = False


@dataclass(frozen=True)
class DesignSettings:
    """How features become regressors: HRF convolution sampled at the scan times.

    ``slice_time_ref``: scan ``i`` is taken at ``(i + slice_time_ref) * TR``; ``"auto"`` reads
    each run's ``StartTime`` from its slice-time-corrected sidecar (0 when none is recorded;
    :mod:`bids_w2v.features.scan_timing`), a number is that fraction of the TR for every run.
    """

    hrf_model: str = "glover"
    oversampling: int = 50
    slice_time_ref: float | str = "auto"
    fir_delays: tuple[int, ...] = ()


@dataclass(frozen=True)
class CleaningSettings:
    """How BOLD is cleaned: nilearn ``load_confounds`` strategy, then z-scored per run.

    ``dummy_scans`` first volumes and ``trim_scans`` (start, end) volumes of every run, or those
    of ``trim_scans_file`` (per task), are dropped from BOLD, confounds and design;
    ``high_pass`` (Hz) is a Butterworth filter applied while cleaning.
    """

    confounds_strategy: tuple[str, ...] = DEFAULT_CONFOUNDS
    dummy_scans: int = 0
    trim_scans: tuple[int, int] = (0, 0)
    trim_scans_file: Path | None = None
    high_pass: float | None = None

    @property
    def uses_confounds(self) -> bool:
        """Whether the fMRIPrep confounds files are read."""
        return tuple(self.confounds_strategy) != NO_CONFOUNDS


@dataclass(frozen=True)
class InputSettings:
    """How inputs are found: ``desc-`` label, BIDS filters, stimulus map, mask, dropped scans.

    ``dropped_scans`` counts the volumes the preprocessing removed from the start of every run
    (Le Petit Prince's AFNI derivatives: 4), so onsets move ``dropped_scans * TR`` earlier.
    """

    desc_label: str = "preproc"
    bids_filter_file: Path | None = None
    stimulus_map: Path | None = None
    mask: Path | None = None
    dropped_scans: int = 0


@dataclass(frozen=True)
class EncodingSettings:
    """Nested cross-validated ridge (the paper's: 5 contiguous folds, LOO alpha per voxel).

    ``cv="runs"`` replaces the contiguous folds by leave-one-run-out; ``gap`` drops the training
    scans within that many scans of the test block. The retired ``alpha_search`` names ``"auto"``
    and ``"local"`` are resolved to ``"exact"`` when the settings are built, so the value stored
    is always ``"exact"`` or ``"full"``.
    """

    n_folds: int = 5
    cv: str = "kfold"
    gap: int = 0
    alphas: tuple[float, ...] = tuple(float(a) for a in DEFAULT_ALPHAS)
    inner: str = "loo"
    alpha_search: str = "exact"
    backend: str = "numpy"
    device: str = "cpu"
    voxel_chunk: int = 20000
    features_pca: int | None = None
    #: per-voxel p (effective degrees of freedom per fold, Bonferroni over folds), BH q and
    #: thresholded participant maps (bids_w2v.encoding.significance)
    participant_stats: bool = True
    #: feature spaces of one banded-ridge model, canonical ``label[:layer]`` (--joint;
    #: bids_w2v.encoding.joint), its random search's draws and seed (bids_w2v.encoding.banded)
    joint: tuple[str, ...] = ()
    joint_n_iter: int = 20
    joint_seed: int = 0
    #: inner criterion of the --joint search: ``loo`` (efficient leave-one-out,
    #: bids_w2v.encoding.banded_loo) or ``himalaya`` (GroupRidgeCV, inner 5-fold)
    joint_solver: str = "loo"

    def __post_init__(self) -> None:
        resolved = resolve_alpha_search(self.alpha_search, self.inner)
        object.__setattr__(self, "alpha_search", resolved)


@dataclass(frozen=True)
class GroupSettings:
    """Group level: FDR level, ROI atlas, noise ceiling, report-only regeneration."""

    fdr_q: float = 0.05
    roi_atlas: Path | None = None
    noise_ceiling: bool = True
    reports_only: bool = False
    #: ``paper`` (the authors' PCA + RidgeCV ceiling) or ``voxelwise`` (bids_w2v.group.ceiling)
    noise_ceiling_method: str = "paper"
    #: ``wilcoxon`` (the paper's, BH-FDR) or ``permutation`` (sign-flip, max-statistic FWE)
    group_test: str = "wilcoxon"
    n_permutations: int = 10000
    permutation_seed: int = 0


@dataclass(frozen=True)
class RunConfig:
    """Everything one invocation of ``bids-w2v`` needs."""

    bids_dir: Path
    output_dir: Path
    analysis_level: str
    work_dir: Path = Path("work")
    derivatives: tuple[tuple[str, Path], ...] = ()
    participant_label: tuple[str, ...] = ()
    #: ``--task``: the tasks fitted jointly (empty: every task whose events name audio)
    task: tuple[str, ...] = ()
    space: str = DEFAULT_SPACE
    res: str | None = None
    models: tuple[ModelSpec, ...] = (ModelSpec(),)
    features: FeatureSettings = field(default_factory=FeatureSettings)
    design: DesignSettings = field(default_factory=DesignSettings)
    cleaning: CleaningSettings = field(default_factory=CleaningSettings)
    encoding: EncodingSettings = field(default_factory=EncodingSettings)
    group: GroupSettings = field(default_factory=GroupSettings)
    feature_cache: Path | None = None
    #: None: the machine's, resolved when the configuration is built (bids_w2v.resources):
    #: the CPUs available to the process, fMRIPrep's min(nprocs - 1, 8), the memory available
    nprocs: int | None = None
    omp_nthreads: int | None = None
    mem_gb: float | None = None
    inputs: InputSettings = field(default_factory=InputSettings)
    plugin: str | None = None
    plugin_args: dict[str, Any] = field(default_factory=dict)
    write_graph: bool = False
    stop_on_first_crash: bool = False
    skip_bids_validation: bool = False
    #: -1 quiet (-q), 0 progress (default), 1 Nipype warnings (-v), 2 Nipype's log (-vv)
    verbosity: int = 0

    def __post_init__(self) -> None:
        from bids_w2v.resources import resolve_resources

        resolved = resolve_resources(self.nprocs, self.omp_nthreads, self.mem_gb, self.plugin)
        for name, value in zip(("nprocs", "omp_nthreads", "mem_gb"), resolved, strict=True):
            object.__setattr__(self, name, value)
        # older records hold one task (a string) or none
        task = self.task
        object.__setattr__(self, "task", (task,) if isinstance(task, str) else tuple(task or ()))

    @property
    def fmriprep_dir(self) -> Path:
        """The fMRIPrep derivatives folder (``-d fmriprep=PATH`` or the BIDS default)."""
        for name, path in self.derivatives:
            if name == "fmriprep":
                return path
        if self.derivatives:
            return self.derivatives[0][1]
        return self.bids_dir / "derivatives" / "fmriprep"

    @property
    def model(self) -> ModelSpec:
        """The first model (the only one unless several ``--model`` were given)."""
        return self.models[0]

    @property
    def cache_dir(self) -> Path:
        """Folder of the content-addressed feature cache."""
        return self.feature_cache or (self.work_dir / "feature_cache")


#: the settings sections of :class:`RunConfig`, by field name
SECTIONS = {
    "features": FeatureSettings,
    "design": DesignSettings,
    "cleaning": CleaningSettings,
    "inputs": InputSettings,
    "encoding": EncodingSettings,
    "group": GroupSettings,
}


def default(cls: type, name: str) -> Any:
    """The default of one settings field, the single place it is written.

    Parameters
    ----------
    cls : dataclass type
        A settings class (e.g. :class:`EncodingSettings`).
    name : str
        One of its fields.

    Returns
    -------
    object
        The field's default value.
    """
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            return f.default_factory()  # type: ignore[misc]
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def _coerce(value: Any, hint: Any) -> Any:
    """Give a parsed value its field's type: lists -> tuples, relative paths -> absolute."""
    if value is None:
        return None
    if isinstance(value, list):
        value = tuple(value)
    if isinstance(value, Path) or (isinstance(value, str) and is_path_hint(hint)):
        return Path(value).absolute()
    return value


def is_path_hint(hint: Any) -> bool:
    """Whether a field's type hint admits a :class:`~pathlib.Path`."""
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    return Path in args


def settings_from(cls: type, values: Mapping[str, Any], **resolved: Any) -> Any:
    """Build one frozen settings object from values named like its fields.

    The parser's destinations are the fields' names, so ``vars(args)`` fills every section;
    values absent from ``values`` keep the field's default.

    Parameters
    ----------
    cls : dataclass type
        The settings class.
    values : mapping
        Parsed values (e.g. ``vars(args)``); names that are not fields are ignored.
    **resolved
        Values computed from several options (they take precedence).

    Returns
    -------
    object
        An instance of ``cls``.
    """
    hints = typing.get_type_hints(cls)
    kwargs = {
        f.name: _coerce(values[f.name], hints[f.name])
        for f in dataclasses.fields(cls)
        if f.name in values
    }
    kwargs.update(resolved)
    return cls(**kwargs)


def node_inputs(interface: type, *settings: Any, **extra: Any) -> dict[str, Any]:
    """Keyword arguments of a Nipype interface taken from settings objects.

    Every field whose name is an input of ``interface`` is passed on; tuples become lists,
    paths strings, and ``None`` is kept (traits accept it where the setting is optional).

    Parameters
    ----------
    interface : type
        A Nipype interface class.
    *settings : dataclass instances
        Settings objects, e.g. ``config.encoding``.
    **extra
        Further inputs (take precedence).

    Returns
    -------
    dict
    """
    names = set(interface.input_spec().trait_names())
    out: dict[str, Any] = {}
    for obj in settings:
        for f in dataclasses.fields(obj):
            if f.name in names:
                out[f.name] = _trait_value(getattr(obj, f.name))
    out.update(extra)
    return out


def settings_dict(settings: Any) -> dict[str, Any]:
    """A settings object as a plain dict (lists, strings), for a Nipype ``Dict`` input.

    :func:`settings_from` turns it back into the settings object inside the node.
    """
    return {f.name: _trait_value(getattr(settings, f.name)) for f in dataclasses.fields(settings)}


def _trait_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_trait_value(v) for v in value]
    return str(value) if isinstance(value, Path) else value
