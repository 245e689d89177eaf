"""Frozen configuration of one bids-w2v run.

A parameter travels CLI -> these dataclasses -> ``init_*_wf(...)`` keyword arguments ->
interface inputs. Nothing here is mutable or global; :func:`config_to_toml` records the whole
configuration in the output's ``logs/`` folder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

DEFAULT_MODEL = "facebook/wav2vec2-base"
DEFAULT_SPACE = "MNI152NLin2009cAsym"
DEFAULT_CONFOUNDS = ("motion", "wm_csf", "high_pass")
DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(1, 8, 20))


@dataclass(frozen=True)
class ModelSpec:
    """Which speech model, and whether its weights are the trained or a random-init twin."""

    name: str = DEFAULT_MODEL
    random_init: bool = False
    seed: int = 0
    allow_download: bool = False
    allow_pickle: bool = False


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
    """How features become regressors: HRF convolution sampled at the scan times."""

    hrf_model: str = "glover"
    oversampling: int = 50
    slice_time_ref: float = 0.0
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
    scans within that many scans of the test block.
    """

    n_folds: int = 5
    cv: str = "kfold"
    gap: int = 0
    alphas: tuple[float, ...] = DEFAULT_ALPHAS
    inner: str = "loo"
    alpha_search: str = "full"
    backend: str = "numpy"
    device: str = "cpu"
    voxel_chunk: int = 20000
    features_pca: int | None = None


@dataclass(frozen=True)
class GroupSettings:
    """Group level: FDR level, ROI atlas, noise ceiling, report-only regeneration."""

    fdr_q: float = 0.05
    roi_atlas: Path | None = None
    noise_ceiling: bool = True
    reports_only: bool = False


@dataclass(frozen=True)
class RunConfig:
    """Everything one invocation of ``bids-w2v`` needs."""

    bids_dir: Path
    output_dir: Path
    analysis_level: str
    work_dir: Path
    derivatives: tuple[tuple[str, Path], ...] = ()
    participant_label: tuple[str, ...] = ()
    task: str | None = None
    space: str = DEFAULT_SPACE
    res: str | None = None
    models: tuple[ModelSpec, ...] = (ModelSpec(),)
    features: FeatureSettings = field(default_factory=FeatureSettings)
    design: DesignSettings = field(default_factory=DesignSettings)
    cleaning: CleaningSettings = field(default_factory=CleaningSettings)
    encoding: EncodingSettings = field(default_factory=EncodingSettings)
    group: GroupSettings = field(default_factory=GroupSettings)
    feature_cache: Path | None = None
    nprocs: int = 1
    omp_nthreads: int = 1
    mem_gb: float | None = None
    inputs: InputSettings = field(default_factory=InputSettings)
    plugin: str | None = None
    plugin_args: dict[str, Any] = field(default_factory=dict)
    write_graph: bool = False
    stop_on_first_crash: bool = False
    skip_bids_validation: bool = False
    verbosity: int = 0

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
