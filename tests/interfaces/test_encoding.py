"""FitEncoding (nipype interface): excluded voxels are counted and reach the map sidecars."""

from __future__ import annotations

import json

import nibabel as nb
import numpy as np

from bids_w2v.config import EncodingSettings, node_inputs
from bids_w2v.interfaces.encoding import FitEncoding
from bids_w2v.outputs.maps import write_participant_maps


def test_excluded_voxels_are_counted_by_reason_in_the_sidecar(tmp_path):
    rng = np.random.default_rng(0)
    n, p, v = 120, 8, 12
    X = rng.standard_normal((n, p))
    Y = X @ rng.standard_normal((p, v)) + rng.standard_normal((n, v))
    Y[3, 0] = np.nan
    Y[7, 1] = np.inf
    Y[:, 2] = 4.0  # constant
    designs, bolds = [], []
    for i, rows in enumerate((slice(0, 60), slice(60, n))):
        designs.append(tmp_path / f"design{i}.npz")
        bolds.append(tmp_path / f"bold{i}.npz")
        np.savez(designs[-1], conv0=X[rows])
        np.savez(bolds[-1], data=Y[rows])
    settings = EncodingSettings(alphas=(1.0, 10.0, 100.0), features_pca=4)
    fit = FitEncoding(
        **node_inputs(FitEncoding, settings, num_threads=1),
        design_files=[str(f) for f in designs],
        bold_files=[str(f) for f in bolds],
        layer="conv0",
    )
    out = dict(np.load(fit.run(cwd=str(tmp_path)).outputs.out_file))
    assert int(out["n_excluded_nonfinite"]) == 2 and int(out["n_excluded_constant"]) == 1
    np.testing.assert_array_equal(np.flatnonzero(out["excluded"]), [0, 1, 2])
    assert np.isfinite(out["scores"][3:]).all() and out["scores"][3:].mean() > 0.5
    # --participant-stats (the default): p-values from the fit, NaN where excluded
    pvalues = out["pvalues"]
    assert np.isnan(pvalues[:3]).all() and np.isfinite(pvalues[3:]).all()
    assert np.median(pvalues[3:]) < 0.01

    mask = nb.Nifti1Image(np.ones((4, 3, 1), dtype=np.uint8), np.eye(4))
    files = write_participant_maps(
        [out],
        ["conv0"],
        [0],
        mask,
        output_dir=tmp_path / "out",
        subject="01",
        task="t",
        space="MNI152NLin2009cAsym",
        res=None,
        model_label="m",
        metadata={"Model": "m"},
    )
    meta = json.loads(files[0].with_name(files[0].name.replace(".nii.gz", ".json")).read_text())
    assert meta["ExcludedVoxels"] == {"NonFinite": 2, "Constant": 1}
