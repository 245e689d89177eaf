"""Participant maps written with bids-w2v's own writer, for group-level tests without fitting.

Scores follow a known layout: in the "deep" half of the grid the scores peak at the last layer,
in the "shallow" half at the first; the trained model scores ``effect`` higher than its
random twin everywhere; participants add independent noise.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nb
import numpy as np

from bids_w2v.outputs.maps import write_participant_maps

LAYERS = ["conv0", "conv1", "transformer0", "transformer1"]
INDICES = [0, 1, 7, 8]
SPACE = "MNI152NLin2009cAsym"


def planted_scores(shape: tuple[int, int, int]) -> np.ndarray:
    """Noise-free scores (n_layers, n_voxels): shallow half peaks at layer 0, deep half at -1."""
    n_vox = int(np.prod(shape))
    deep = np.arange(n_vox) >= n_vox // 2
    ramp = np.linspace(0.05, 0.3, len(LAYERS))
    return np.where(deep[None], ramp[:, None], ramp[::-1, None])


def write_maps(
    out: Path,
    *,
    subjects: tuple[str, ...] = ("01", "02", "03", "04", "05", "06", "07", "08"),
    models: tuple[tuple[str, bool, float], ...] = (("tiny", False, 0.1), ("tinyRandom", True, 0.0)),
    shape: tuple[int, int, int] = (4, 4, 3),
    noise: float = 0.02,
    affine: np.ndarray | None = None,
    seed: int = 0,
    space: str = SPACE,
    tasks: tuple[str, ...] | None = None,
) -> np.ndarray:
    """Write every subject's maps of every model; return the planted scores.

    ``tasks``: the stories the maps were fitted on jointly (sidecar ``Tasks``, joint ``task-``
    label); None: task ``listen``, no ``Tasks`` field (maps of older bids-w2v)."""
    from bids_w2v.outputs.names import task_label

    rng = np.random.default_rng(seed)
    mask_img = nb.Nifti1Image(np.ones(shape, np.uint8), np.eye(4) if affine is None else affine)
    base = planted_scores(shape)
    for sub in subjects:
        for label, random_init, effect in models:
            scores = base + effect + noise * rng.standard_normal(base.shape)
            results = [
                {
                    "scores": s,
                    "fold_scores": s[None],
                    "alphas": np.full((1, s.size), 100.0),
                    "excluded": np.zeros(s.size, bool),
                }
                for s in scores
            ]
            write_participant_maps(
                results,
                LAYERS,
                INDICES,
                mask_img,
                output_dir=out,
                subject=sub,
                task=task_label(tasks) if tasks else "listen",
                space=space,
                res=None,
                model_label=label,
                metadata={
                    "Model": f"tests/{label}",
                    "ModelLabel": label,
                    "RandomInit": random_init,
                    "Seed": 0,
                    "CrossValidation": {"Outer": "5 contiguous unshuffled folds", "NFolds": 5},
                    "NumberOfScans": 400,
                    **({"Tasks": list(tasks)} if tasks else {}),
                    "RepetitionTime": 1.0,
                    "Sources": [
                        f"file:///ds/sub-{sub}/func/sub-{sub}_task-listen_run-{r}_bold.nii.gz"
                        for r in (1, 2)
                    ]
                    + ["file:///ds/stimuli/a.wav", "file:///ds/stimuli/b.wav"],
                },
            )
    return base
