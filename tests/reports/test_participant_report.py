"""The participant report counts each layer's significant voxels (``--participant-stats``)."""

from __future__ import annotations

import nibabel as nb
import numpy as np


def _write(tmp_path, with_p: bool):
    from bids_w2v.outputs.maps import write_participant_maps
    from bids_w2v.spaces import VolumeSpace

    mask = np.ones((4, 4, 3), dtype=np.uint8)
    space = VolumeSpace(nb.Nifti1Image(mask, np.eye(4)))
    n = mask.size
    results = []
    for k in range(2):
        result = {
            "scores": np.linspace(0.3, -0.1, n) / (k + 1),
            "fold_scores": np.zeros((2, n)),
            "alphas": np.ones((2, n)),
            "excluded": np.zeros(n, bool),
        }
        if with_p:
            p = np.full(n, 0.5)
            p[: 5 * (k + 1)] = 1e-6  # 5 then 10 significant voxels
            result["pvalues"] = p
        results.append(result)
    meta = {"ModelLabel": "m", "Model": "m", "CrossValidation": {"Outer": "5 folds"}}
    return write_participant_maps(
        results,
        ["conv0", "conv1"],
        [0, 1],
        space,
        output_dir=tmp_path,
        subject="01",
        task="t",
        space="MNI152NLin2009cAsym",
        res=None,
        model_label="m",
        metadata=meta,
    )


def test_report_counts_significant_voxels(tmp_path):
    from bids_w2v.reports.participant import write_participant_report

    files = _write(tmp_path, with_p=True)
    text = write_participant_report(tmp_path, "01", files).read_text()
    assert "significant voxels (q &lt; 0.05)" in text
    assert "<td>5</td></tr>" in text and "<td>10</td></tr>" in text


def test_report_without_participant_stats(tmp_path):
    from bids_w2v.reports.participant import write_participant_report

    files = _write(tmp_path, with_p=False)
    text = write_participant_report(tmp_path, "01", files).read_text()
    assert "not tested (--no-participant-stats)" in text
