"""Which mesh a surface map is drawn on, found offline (bids_w2v.reports.surface_meshes)."""

from __future__ import annotations

import numpy as np
import pytest

from bids_w2v.reports.surface_meshes import find_mesh, surface_values
from bids_w2v.spaces import gifti_map_image, write_gifti
from tests.reports.meshes import fsaverage5, templateflow_home, write_cifti_map, write_surface


def test_fsaverage_meshes_are_nested():
    """The claim the fsaverage6/fsaverage drawings rest on, checked on nilearn's fsaverage5
    sphere: every icosahedral level appends its vertices after the previous level's, each new
    vertex the (normalised) midpoint of two older ones; so the first 10 * 4**k + 2 vertices of
    a finer fsaverage are the coarser one's (fsaverage6 and fsaverage are made the same way)."""
    from nilearn import datasets
    from scipy.spatial import cKDTree

    sphere = datasets.load_fsaverage("fsaverage5")["sphere"]
    for part in ("left", "right"):
        coords = np.asarray(sphere.parts[part].coordinates, dtype=np.float64)
        coords /= np.linalg.norm(coords, axis=1, keepdims=True)
        sizes = [10 * 4**k + 2 for k in range(6)]
        assert sizes[-1] == len(coords) == 10242
        for lo, hi in zip(sizes[:-1], sizes[1:], strict=True):
            dist, nearest = cKDTree(coords[:lo]).query(coords[lo:hi], k=2)
            mid = coords[nearest[:, 0]] + coords[nearest[:, 1]]
            mid /= np.linalg.norm(mid, axis=1, keepdims=True)
            off = np.linalg.norm(mid - coords[lo:hi], axis=1)
            assert (off < 0.02 * dist[:, 0]).all(), (part, lo, hi)


def _gifti_pair(tmp_path, n, space="fsaverage6", seed=0):
    rng = np.random.default_rng(seed)
    halves = {}
    for hemi in "LR":
        halves[hemi] = rng.uniform(-0.3, 0.3, n)
        name = f"sub-01_task-t_hemi-{hemi}_space-{space}_desc-m_stat-r_statmap.func.gii"
        write_gifti(tmp_path / name, gifti_map_image(halves[hemi], hemi, name=""))
    left = tmp_path / f"sub-01_task-t_hemi-L_space-{space}_desc-m_stat-r_statmap.func.gii"
    return left, np.concatenate([halves["L"], halves["R"]]), halves


def test_fsaverage6_on_nilearn_fsaverage5(tmp_path, monkeypatch, network_attempts):
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(tmp_path / "empty"))
    left, values, halves = _gifti_pair(tmp_path, 40962)
    surface = surface_values(values, left)
    assert surface.space == "fsaverage6"
    np.testing.assert_allclose(surface.left, halves["L"])
    np.testing.assert_allclose(surface.right, halves["R"])
    mesh, caption = find_mesh(surface, left)
    expected = fsaverage5()
    for h, hemi in enumerate("LR"):
        np.testing.assert_array_equal(mesh.coords[h], expected[hemi][0])
        np.testing.assert_array_equal(mesh.faces[h], expected[hemi][1])
    assert mesh.n_vertices == (10242, 10242)
    assert "fsaverage5 inflated mesh bundled with nilearn" in caption
    assert "first 10242 vertices of each fsaverage6 hemisphere are fsaverage5's" in caption
    assert "tpl-fsaverage den-41k" in caption  # how to draw every vertex
    assert network_attempts == []


def test_fsaverage6_full_resolution_from_templateflow(tmp_path, monkeypatch, network_attempts):
    home = templateflow_home(tmp_path / "tf")
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(home))
    left, values, _ = _gifti_pair(tmp_path, 40962)
    mesh, caption = find_mesh(surface_values(values, left), left)
    assert mesh.n_vertices == (40962, 40962) and mesh.sulc[0].shape == (40962,)
    assert "full resolution" in caption and "tpl-fsaverage den-41k inflated" in caption
    # fsaverage (164k) is drawn on the nested 41k mesh, fsaverage5 on its own
    left, values, _ = _gifti_pair(tmp_path, 163842, space="fsaverage")
    mesh, caption = find_mesh(surface_values(values, left), left)
    assert mesh.n_vertices == (40962, 40962) and "the other 122880 are not" in caption
    assert network_attempts == []


def test_empty_templateflow_files_are_ignored(tmp_path, monkeypatch):
    """A TemplateFlow skeleton holds empty files until fetched: the bundled mesh is used."""
    folder = tmp_path / "tf" / "tpl-fsaverage"
    folder.mkdir(parents=True)
    for hemi in "LR":
        (folder / f"tpl-fsaverage_hemi-{hemi}_den-41k_inflated.surf.gii").touch()
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(tmp_path / "tf"))
    left, values, _ = _gifti_pair(tmp_path, 40962)
    mesh, caption = find_mesh(surface_values(values, left), left)
    assert mesh.n_vertices == (10242, 10242) and "bundled with nilearn" in caption


@pytest.mark.parametrize("n", [50, 40000])
def test_unknown_surfaces_explained(tmp_path, n):
    left, values, _ = _gifti_pair(tmp_path, n, space="fsaverage6" if n > 50 else "other")
    mesh, caption = find_mesh(surface_values(values, left), left)
    assert mesh is None and "histogram" in caption and str(n) in caption


def test_cifti_without_templateflow(tmp_path, monkeypatch):
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(tmp_path / "empty"))
    path, values, vertices = write_cifti_map(tmp_path)
    surface = surface_values(values, path)
    assert surface.left.shape == (32492,) and surface.other == 8
    np.testing.assert_allclose(surface.left[vertices], values[: vertices.size])
    assert np.isnan(surface.left[1::2]).all()
    mesh, caption = find_mesh(surface, path)
    assert mesh is None
    assert "a CIFTI file holds no mesh" in caption and "tpl-fsLR den-32k" in caption
    assert str(tmp_path / "empty" / "tpl-fsLR") in caption and "histogram" in caption


def test_cifti_on_templateflow_fslr(tmp_path, monkeypatch):
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(templateflow_home(tmp_path / "tf")))
    path, values, _ = write_cifti_map(tmp_path)
    mesh, caption = find_mesh(surface_values(values, path), path)
    assert mesh.n_vertices == (32492, 32492)
    assert "tpl-fsLR den-32k inflated" in caption and "8 subcortical" in caption


def _fmriprep_subject(root, sizes):
    """An fMRIPrep derivative with the participant's own surfaces (``sizes``: left, right)."""
    for (hemi, (coords, faces, _)), n in zip(fsaverage5().items(), sizes, strict=True):
        keep = (faces < n).all(axis=1)
        write_surface(
            root / "sub-01" / "anat" / f"sub-01_hemi-{hemi}_inflated.surf.gii",
            coords[:n],
            faces[keep],
        )
    return root / "sub-01" / "func" / "sub-01_task-t_hemi-L_space-fsnative_bold.func.gii"


def test_fsnative_on_the_participants_surfaces(tmp_path):
    import json

    sizes = (9000, 8800)  # not fsaverage sizes; the hemispheres differ, as on fsnative
    bold = _fmriprep_subject(tmp_path / "fmriprep", sizes)
    values = np.concatenate([np.zeros(sizes[0]), np.ones(sizes[1])])
    left = tmp_path / "sub-01_task-t_hemi-L_space-fsnative_desc-m_stat-r_statmap.func.gii"
    write_gifti(left, gifti_map_image(values[: sizes[0]], "L", name=""))
    sidecar = tmp_path / "sub-01_task-t_hemi-L_space-fsnative_desc-m_stat-r_statmap.json"
    sidecar.write_text(json.dumps({"Sources": [bold.as_uri()]}))
    surface = surface_values(values, left)
    assert (surface.left.size, surface.right.size) == sizes and surface.space == "fsnative"
    mesh, caption = find_mesh(surface, left)
    assert mesh.n_vertices == sizes
    assert "participant's own inflated surfaces" in caption
    assert "sub-01_hemi-L_inflated.surf.gii" in caption

    sidecar.write_text(json.dumps({"Sources": [str(tmp_path / "elsewhere" / bold.name)]}))
    mesh, caption = find_mesh(surface_values(values, left), left)
    assert mesh is None and "were not found" in caption and "histogram" in caption
