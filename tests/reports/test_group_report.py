"""The group report names the test that made the thresholded maps and the noise-ceiling method."""

from __future__ import annotations

import numpy as np
import pytest

from bids_w2v.testing.group_maps import SPACE, write_maps

COMMON = {"task": "listen", "space": SPACE, "res": None}


@pytest.mark.parametrize(("test", "method"), [("permutation", "paper"), ("wilcoxon", "voxelwise")])
def test_group_report_names_test_and_ceiling_method(tmp_path, test, method):
    from bids_w2v.group.collection import collect_participant_maps, load_grid
    from bids_w2v.group.maps import GroupWriter, write_group_maps
    from bids_w2v.group.noise_ceiling import group_ceiling_path
    from bids_w2v.group.significance import GroupTest
    from bids_w2v.reports.group import write_group_report

    out = tmp_path / "bids-w2v"
    write_maps(out, subjects=("01", "02", "03", "04", "05", "06"), shape=(4, 4, 3))
    found = collect_participant_maps(out, None, SPACE, None)
    grid = load_grid(next(iter(found["tiny"].values()))[0][1])
    ceiling = GroupWriter(out, grid, **COMMON).map(
        np.full(grid.shape, 0.5),
        {"Statistic": "mean_noise_ceiling_pearson_r", "NoiseCeilingMethod": method},
        stat="noiseceiling",
        desc=None,
    )
    assert ceiling == group_ceiling_path(out, "listen", SPACE, None)
    for label in found:
        write_group_maps(
            found[label],
            output_dir=out,
            model_label=label,
            ceiling_file=ceiling,
            group_test=GroupTest(test, 100, 0),
            **COMMON,
        )
    text = write_group_report(out, **COMMON).read_text()
    assert f"Method: <b>{method}</b>" in text
    if test == "permutation":
        assert "sign-flip permutation, max-statistic FWE" in text
        assert "thresholded by the two-sided sign-flip permutation test" in text
        assert "[@nichols2002]" in text
    else:
        assert "Wilcoxon signed-rank, Benjamini-Hochberg FDR" in text
        assert "not the paper&#x27;s method" in text or "not the paper's method" in text
