"""write_noise_ceiling streams over participants (one participant's cleaned BOLD and one run's
running sum in memory): its maps equal each participant's ceiling computed here directly from
the cleaned BOLD it left in the scratch folder, with the others' mean taken by numpy."""

from __future__ import annotations

import warnings

import nibabel as nb
import numpy as np
import pytest

from benchmarks.group_scale import write_dataset
from bids_w2v.config import CleaningSettings, EncodingSettings, InputSettings
from bids_w2v.encoding.folds import make_folds
from bids_w2v.group.ceiling import crossval_ceiling, paper_ceiling
from bids_w2v.group.collection import collect_participant_maps
from bids_w2v.group.noise_ceiling import write_noise_ceiling
from bids_w2v.testing.group_maps import SPACE, write_maps


@pytest.mark.slow
@pytest.mark.parametrize("method", ["voxelwise", "paper"])
def test_streamed_ceiling_equals_direct_computation(tmp_path, method):
    subjects = ["01", "02", "03", "04"]
    shape = (30, 1, 1)
    write_dataset(tmp_path / "bids", subjects, 40, shape)
    write_maps(
        tmp_path / "maps", subjects=tuple(subjects), models=(("m", False, 0.1),), shape=shape
    )
    found = collect_participant_maps(tmp_path / "maps", None, SPACE, None)
    scratch = tmp_path / "scratch"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        files, notes = write_noise_ceiling(
            found,
            bids_dir=tmp_path / "bids",
            fmriprep_dir=tmp_path / "bids" / "derivatives" / "fmriprep",
            output_dir=tmp_path / "out",
            scratch_dir=scratch,
            task="listen",
            space=SPACE,
            res=None,
            inputs=InputSettings(),
            cleaning=CleaningSettings(),
            encoding=EncodingSettings(),
            method=method,
        )
    assert not notes and len(files) == len(subjects) + 1
    cleaned = {s: np.load(scratch / f"sub-{s}_run0.npy").astype(np.float64) for s in subjects}
    for s in subjects:
        others = np.mean([cleaned[o] for o in subjects if o != s], axis=0)
        if method == "paper":
            expected = paper_ceiling(cleaned[s], others)
        else:
            expected = crossval_ceiling(cleaned[s], others, make_folds(40, n_folds=5))
        path = next((tmp_path / "out").glob(f"sub-{s}/func/*stat-noiseceiling_statmap.nii.gz"))
        np.testing.assert_allclose(nb.load(path).get_fdata().ravel(), expected, atol=1e-6)
