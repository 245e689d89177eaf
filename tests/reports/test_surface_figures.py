"""Surface maps drawn as brains in the reports (bids_w2v.reports.surface_figures).

What is drawn is read back from the PNG: a map that is +vmax on the first 10242 vertices of
each fsaverage6 hemisphere and -vmax on the others must come out in the top colour only (the
nested fsaverage5 vertices are the ones drawn).
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from bids_w2v.reports.surface_figures import load_report_map, map_figure
from bids_w2v.spaces import SurfaceSpace, gifti_map_image, write_gifti
from tests.reports.meshes import fsaverage5, write_cifti_map, write_surface

VIRIDIS_TOP, VIRIDIS_BOTTOM = (253, 231, 37), (68, 1, 84)


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as img:
        assert img.format == "PNG"
        return np.asarray(img.convert("RGB"), dtype=float)


def _share(pixels: np.ndarray, colour) -> float:
    return float((np.abs(pixels - np.asarray(colour)).max(axis=2) < 25).mean())


def _fs6_map(tmp_path):
    n = 40962
    for hemi in "LR":
        values = np.full(n, -1.0)
        values[:10242] = 1.0  # the fsaverage5 vertices
        values[:200] = np.nan  # a "medial wall"
        name = f"sub-01_task-t_hemi-{hemi}_space-fsaverage6_desc-m_stat-r_statmap.func.gii"
        write_gifti(tmp_path / name, gifti_map_image(values, hemi, name=""))
    return tmp_path / "sub-01_task-t_hemi-L_space-fsaverage6_desc-m_stat-r_statmap.func.gii"


@pytest.mark.slow  # draws four views (~2 s) after importing nilearn's plotting
def test_fsaverage6_map_drawn_on_nested_fsaverage5(tmp_path, monkeypatch, network_attempts):
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(tmp_path / "empty"))
    left = _fs6_map(tmp_path)
    values = load_report_map(left)
    assert values.shape == (2 * 40962,)
    figure = map_figure(values, left, "mean r", cmap="viridis", vmin=-1, vmax=1)
    pixels = _pixels(figure.png)
    assert pixels.shape[1] > 1.3 * pixels.shape[0] > 350  # four views and a colour bar
    assert _share(pixels, VIRIDIS_TOP) > 0.05  # the first 10242 vertices of each hemisphere
    assert _share(pixels, VIRIDIS_BOTTOM) < 0.002  # the colour bar's end only
    assert figure.caption.startswith("Lateral and medial views of both hemispheres.")
    assert "fsaverage5 inflated mesh bundled with nilearn" in figure.caption
    assert "first 10242 vertices of each fsaverage6 hemisphere" in figure.caption
    assert network_attempts == []


def test_fslr_without_template_is_a_captioned_histogram(tmp_path, monkeypatch):
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(tmp_path / "empty"))
    path, values, _ = write_cifti_map(tmp_path)
    figure = map_figure(values, path, "mean r", cmap="viridis", vmin=-0.2, vmax=0.2)
    assert _pixels(figure.png).size
    assert "a CIFTI file holds no mesh" in figure.caption
    assert "histogram of the values instead" in figure.caption
    assert "api.get('fsLR', density='32k'" in figure.caption


def test_colour_bar_in_layer_names():
    import matplotlib.pyplot as plt

    from bids_w2v.reports.surface_figures import add_colorbar

    names = [f"conv{i}" for i in range(7)] + [f"transformer{i}" for i in range(24)]
    fig, ax = plt.subplots()
    add_colorbar(fig, ax, cmap="viridis", vmin=0, vmax=30, ticks=list(enumerate(names)))
    labels = [t.get_text() for t in ax.get_yticklabels()]
    plt.close(fig)
    assert labels[0] == "conv0" and labels[-1] == "transformer23"
    assert 10 <= len(labels) <= 17 and set(labels) <= set(names)


def write_fsnative_maps(out, fmriprep, sizes=(9000, 8800)):
    """Participant maps on fsnative (``sizes``: vertices of the left and right hemisphere)
    whose sources are in an fMRIPrep derivative holding the participant's own surfaces."""
    from bids_w2v.outputs.maps import write_participant_maps

    for (hemi, (coords, faces, _)), n in zip(fsaverage5().items(), sizes, strict=True):
        keep = (faces < n).all(axis=1)
        anat = fmriprep / "sub-01" / "anat"
        write_surface(anat / f"sub-01_hemi-{hemi}_inflated.surf.gii", coords[:n], faces[keep])
    bold = fmriprep / "sub-01" / "func" / "sub-01_task-t_hemi-L_space-fsnative_bold.func.gii"
    space = SurfaceSpace(tuple(np.arange(n) >= 100 for n in sizes))
    rng = np.random.default_rng(0)
    results = [
        {
            "scores": rng.uniform(-0.1, 0.3, space.n_features),
            "fold_scores": np.zeros((2, space.n_features)),
            "alphas": np.ones((2, space.n_features)),
            "excluded": np.zeros(space.n_features, bool),
        }
        for _ in range(3)
    ]
    meta = {"ModelLabel": "m", "Model": "m", "Sources": [bold.as_uri()]}
    return write_participant_maps(
        results,
        ["conv0", "transformer0", "transformer1"],
        [0, 7, 8],
        space,
        output_dir=out,
        subject="01",
        task="t",
        space="fsnative",
        res=None,
        model_label="m",
        metadata=meta,
    )


@pytest.mark.slow  # draws two maps
def test_fsnative_participant_report_on_own_surfaces(tmp_path, network_attempts):
    from bids_w2v.reports.participant import write_participant_report

    files = write_fsnative_maps(tmp_path / "out", tmp_path / "fmriprep")
    assert json.loads(files[0].with_name(files[0].name[:-9] + ".json").read_text())["Sources"]
    text = write_participant_report(tmp_path / "out", "01", files).read_text()
    assert text.count("fsnative map drawn on the participant&#x27;s own inflated surfaces") == 2
    assert "sub-01_hemi-L_inflated.surf.gii" in text and "histogram" not in text
    assert network_attempts == []


@pytest.mark.slow
def test_fsnative_participant_report_in_browser(tmp_path):
    from bids_w2v.reports.participant import write_participant_report
    from tests.reports.test_browser import check_in_browser

    files = write_fsnative_maps(tmp_path / "out", tmp_path / "fmriprep")
    check_in_browser(write_participant_report(tmp_path / "out", "01", files), tmp_path)


def write_fsaverage6_group(out):
    """Three participants' maps of two layers on fsaverage6 (81924 vertices), and the group
    maps; the first 10242 vertices of each hemisphere score high at the deep layer."""
    from bids_w2v.group.collection import collect_participant_maps
    from bids_w2v.group.maps import write_group_maps
    from bids_w2v.outputs.maps import write_participant_maps

    n = 40962
    space = SurfaceSpace((np.arange(n) >= 50, np.arange(n) >= 50))
    nested = np.concatenate([np.arange(n)[m] < 10242 for m in space.masks])
    rng = np.random.default_rng(0)
    for sub in ("01", "02", "03"):
        results = []
        for layer in range(2):
            scores = rng.normal(0.02, 0.02, space.n_features) + 0.2 * layer * nested
            results.append(
                {
                    "scores": scores,
                    "fold_scores": scores[None],
                    "alphas": np.ones((1, space.n_features)),
                    "excluded": np.zeros(space.n_features, bool),
                }
            )
        write_participant_maps(
            results,
            ["conv0", "transformer0"],
            [0, 7],
            space,
            output_dir=out,
            subject=sub,
            task="t",
            space="fsaverage6",
            res=None,
            model_label="m",
            metadata={"ModelLabel": "m", "Model": "m"},
        )
    found = collect_participant_maps(out, "t", "fsaverage6", None)
    common = {"task": "t", "space": "fsaverage6", "res": None}
    write_group_maps(found["m"], output_dir=out, model_label="m", **common)
    return common


@pytest.mark.slow
def test_fsaverage6_group_report_draws_brains(tmp_path, monkeypatch, network_attempts):
    """The paper's space (Narratives on fsaverage6): brains, not histograms, in the browser."""
    from bids_w2v.reports.group import write_group_report
    from tests.reports.test_browser import check_in_browser

    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(tmp_path / "empty"))
    common = write_fsaverage6_group(tmp_path / "out")
    report = write_group_report(tmp_path / "out", **common)
    text = report.read_text()
    assert "no mesh" not in text and "histogram" not in text
    nested = "the first 10242 vertices of each fsaverage6 hemisphere are fsaverage5&#x27;s"
    assert text.count(nested) == 2  # the peak-layer map and the maps per layer
    assert text.count("Lateral and medial views of both hemispheres.") == 2
    check_in_browser(report, tmp_path)
    assert network_attempts == []
