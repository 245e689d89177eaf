"""Surface meshes for the report tests, built from nilearn's bundled fsaverage5 (no network).

:func:`subdivide` makes an fsaverage6-sized mesh the way FreeSurfer's icosahedra are made: each
triangle split in four, the new (edge-midpoint) vertices appended after the old ones, so the
first 10242 vertices are fsaverage5's. :func:`templateflow_home` lays such meshes out as
TemplateFlow's ``tpl-fsaverage`` (den-41k) and ``tpl-fsLR`` (den-32k) folders.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nb
import numpy as np


def fsaverage5(kind: str = "inflated") -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """nilearn's fsaverage5 (coordinates, triangles, sulcal depth) per hemisphere ``L``/``R``."""
    from nilearn import datasets

    mesh = datasets.load_fsaverage("fsaverage5")[kind]
    sulc = datasets.load_fsaverage_data(mesh="fsaverage5", data_type="sulcal").data
    return {
        h: (
            np.asarray(mesh.parts[part].coordinates, dtype=np.float64),
            np.asarray(mesh.parts[part].faces, dtype=np.int64),
            np.asarray(sulc.parts[part], dtype=np.float64),
        )
        for h, part in (("L", "left"), ("R", "right"))
    }


def subdivide(coords: np.ndarray, faces: np.ndarray, sulc: np.ndarray):
    """One icosahedral subdivision: edge midpoints appended after the old vertices."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    unique, inverse = np.unique(edges, axis=0, return_inverse=True)
    mid = len(coords) + inverse.reshape(3, -1).T  # per face: ab, bc, ca
    new_coords = np.vstack([coords, (coords[unique[:, 0]] + coords[unique[:, 1]]) / 2])
    new_sulc = np.concatenate([sulc, (sulc[unique[:, 0]] + sulc[unique[:, 1]]) / 2])
    a, b, c = faces.T
    ab, bc, ca = mid.T
    new_faces = np.vstack([np.c_[a, ab, ca], np.c_[ab, b, bc], np.c_[ca, bc, c], np.c_[ab, bc, ca]])
    return new_coords, new_faces, new_sulc


def write_surface(path: Path, coords: np.ndarray, faces: np.ndarray) -> Path:
    """A GIfTI surface (pointset and triangles)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nb.gifti.GiftiImage(
        darrays=[
            nb.gifti.GiftiDataArray(coords.astype(np.float32), intent="NIFTI_INTENT_POINTSET"),
            nb.gifti.GiftiDataArray(faces.astype(np.int32), intent="NIFTI_INTENT_TRIANGLE"),
        ]
    )
    nb.save(img, str(path))
    return path


def write_shape(path: Path, values: np.ndarray) -> Path:
    """A GIfTI shape map (sulcal depth)."""
    darray = nb.gifti.GiftiDataArray(values.astype(np.float32), intent="NIFTI_INTENT_SHAPE")
    nb.save(nb.gifti.GiftiImage(darrays=[darray]), str(path))
    return path


def templateflow_home(root: Path) -> Path:
    """A TEMPLATEFLOW_HOME with tpl-fsaverage den-41k and tpl-fsLR den-32k inflated surfaces."""
    for hemi, (coords, faces, sulc) in fsaverage5().items():
        c6, f6, s6 = subdivide(coords, faces, sulc)
        folder = root / "tpl-fsaverage"
        write_surface(folder / f"tpl-fsaverage_hemi-{hemi}_den-41k_inflated.surf.gii", c6, f6)
        write_shape(folder / f"tpl-fsaverage_hemi-{hemi}_den-41k_sulc.shape.gii", s6)
        n = 32492  # fsLR den-32k: a stand-in mesh with its vertex count
        keep = (f6 < n).all(axis=1)
        folder = root / "tpl-fsLR"
        write_surface(folder / f"tpl-fsLR_hemi-{hemi}_den-32k_inflated.surf.gii", c6[:n], f6[keep])
    return root


def write_cifti_map(tmp_path: Path, n_vertices: int = 32492):
    """An fsLR den-91k-like dense scalar map: every other cortical vertex and 8 thalamic voxels."""
    from nibabel import cifti2

    from bids_w2v.spaces import dscalar_image, write_cifti

    vertices = np.arange(0, n_vertices, 2)
    axis = (
        cifti2.BrainModelAxis.from_surface(vertices, n_vertices, "CortexLeft")
        + cifti2.BrainModelAxis.from_surface(vertices, n_vertices, "CortexRight")
        + cifti2.BrainModelAxis.from_mask(np.ones((2, 2, 2)), "ThalamusLeft", affine=np.eye(4))
    )
    values = np.linspace(-0.2, 0.2, len(axis))
    path = tmp_path / "sub-01_task-t_space-fsLR_den-91k_desc-m_stat-r_statmap.dscalar.nii"
    write_cifti(path, dscalar_image(values[None], ["r"], axis))
    return path, values, vertices
