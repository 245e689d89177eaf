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


@dataclass(frozen=True)
class FeatureSettings:
    """How activations are extracted: layers and the paper's windowing (10 s, 5 s stride)."""

    layers: str = "all"
    window_s: float | None = 10.0
    stride_s: float = 5.0
    batch_size: int = 4


@dataclass(frozen=True)
class DesignSettings:
    """How features become regressors: HRF convolution sampled at the scan times."""

    hrf_model: str = "glover"
    oversampling: int = 50
    slice_time_ref: float = 0.0


@dataclass(frozen=True)
class CleaningSettings:
    """How BOLD is cleaned: nilearn ``load_confounds`` strategy, then z-scored per run."""

    confounds_strategy: tuple[str, ...] = DEFAULT_CONFOUNDS


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
    backend: str = "numpy"
    device: str = "cpu"
    voxel_chunk: int = 20000


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
    model: ModelSpec = field(default_factory=ModelSpec)
    features: FeatureSettings = field(default_factory=FeatureSettings)
    design: DesignSettings = field(default_factory=DesignSettings)
    cleaning: CleaningSettings = field(default_factory=CleaningSettings)
    encoding: EncodingSettings = field(default_factory=EncodingSettings)
    feature_cache: Path | None = None
    nprocs: int = 1
    omp_nthreads: int = 1
    mem_gb: float | None = None
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
    def cache_dir(self) -> Path:
        """Folder of the content-addressed feature cache."""
        return self.feature_cache or (self.work_dir / "feature_cache")


def _plain(value: Any) -> Any:
    """Turn dataclass values into TOML-serialisable builtins."""
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
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
