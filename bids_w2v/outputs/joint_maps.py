"""Participant maps of the joint (banded-ridge) model and its variance partitioning (--joint).

For a joint model of spaces ``A``, ``B``... every map is an r² (``stat-r2``) and ``desc-`` says
which:

* ``desc-joint<A><B>``: held-out r² of the joint model;
* ``desc-shared<A><B>``: r² of the joint model not explained by any space alone;
* ``desc-unique<A>`` (one per space): r² of the joint model minus that of the model without
  ``A`` (:mod:`bids_w2v.encoding.banded`);
* ``desc-without<A>``: r² of the model of the other spaces.

``<A>`` is the space's model label and layer as in its single-model maps
(``wav2vec2baseTransformer6``), or the model label alone for a single-layer model (``mel``).
Every sidecar names the joint model (``JointModel``), and the space (``FeatureSpace``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bids_w2v.encoding.banded import CONCENTRATION
from bids_w2v.encoding.joint import joint_desc, space_desc
from bids_w2v.outputs.maps import write_statmap
from bids_w2v.spaces import MapSpace, as_space

#: what ``stat-unique`` holds, for sidecars and reports
UNIQUE_DESCRIPTION = (
    "Held-out r2 of the joint model minus that of the model without this feature space "
    "(variance only this space explains; mean over outer folds)."
)


def joint_metadata(encoding) -> dict[str, Any]:
    """Sidecar fields of the joint model from the run's :class:`EncodingSettings`."""
    loo = encoding.joint_solver == "loo"
    return {
        "Solver": "banded ridge: one regularisation per feature space and voxel, chosen by the "
        "random search of himalaya GroupRidgeCV (BandedRidgeCV) over the simplex of "
        "feature-space weights times the alpha grid; "
        + ("fitted by bids-w2v's leave-one-out solver" if loo else "fitted by himalaya"),
        "JointSolver": "loo" if loo else "himalaya",
        "RandomSearchDraws": encoding.joint_n_iter,
        "RandomSearchSeed": encoding.joint_seed,
        "DirichletConcentration": list(CONCENTRATION),
        "InnerCV": (
            "efficient leave-one-out on each training fold (intercept refitted without each scan)"
            if loo
            else "5 contiguous inner folds on each training fold"
        ),
        "FeatureStandardization": "each space z-scored within each training fold",
        "Score": "coefficient of determination r2 on the held-out fold, averaged over folds",
    }


def _fold_means(fold_values: np.ndarray) -> list[float | None]:
    out = []
    for row in np.asarray(fold_values, dtype=np.float64):
        finite = row[np.isfinite(row)]
        out.append(float(finite.mean()) if finite.size else None)
    return out


def write_joint_maps(
    result: Mapping[str, np.ndarray],
    mask_img: MapSpace,
    *,
    output_dir: Path,
    subject: str,
    task: str,
    space: str,
    res: str | None,
    den: str | None = None,
    metadata: Mapping[str, Any],
    joint_info: Mapping[str, Any],
) -> list[Path]:
    """Write the joint model's r², shared, unique and r²-without maps of one participant.

    Parameters
    ----------
    result : mapping
        The npz of :class:`bids_w2v.interfaces.encoding.FitJoint`: ``spaces`` (model labels),
        ``layers``, ``r2``, ``fold_r2``, ``r2_without``, ``unique``, ``shared``, ``excluded``.
    mask_img : MapSpace
        The participant's map space.
    output_dir : Path
        Root of the derivative dataset.
    subject, task, space, res, den : str
        BIDS entities.
    metadata : mapping
        The analysis' sidecar fields (:func:`bids_w2v.outputs.metadata.analysis_metadata`).
    joint_info : mapping
        :func:`joint_metadata` of the run.

    Returns
    -------
    list of Path
        Maps written.
    """
    mask_img = as_space(mask_img)
    common = {"task": task, "space": space, "res": res, "den": den, "subject": subject}
    labels = [str(s) for s in result["spaces"]]
    layers = [str(x) for x in result["layers"]]
    descs = [space_desc(lab, lay) for lab, lay in zip(labels, layers, strict=True)]
    jdesc = joint_desc(descs)
    spaces_meta = [
        {"ModelLabel": lab, "LayerName": lay, "Desc": d}
        for lab, lay, d in zip(labels, layers, descs, strict=True)
    ]
    base = {
        **metadata,
        "JointModel": {"Desc": jdesc, "FeatureSpaces": spaces_meta, **joint_info},
        "ExcludedVoxels": int(np.sum(result["excluded"])),
    }
    written = write_statmap(
        result["r2"],
        mask_img,
        {**base, "Statistic": "r2", "FoldScoresMean": _fold_means(result["fold_r2"])},
        output_dir,
        stat="r2",
        desc=jdesc,
        **common,
    )
    written += write_statmap(
        result["shared"],
        mask_img,
        {
            **base,
            "Statistic": "shared_r2",
            "Description": "Held-out r2 of the joint model minus the sum of every space's "
            "unique r2 (for two spaces: r2(A) + r2(B) - r2(A, B)).",
        },
        output_dir,
        stat="r2",
        desc="shared" + jdesc[len("joint") :],
        **common,
    )
    for k, (sp, desc) in enumerate(zip(spaces_meta, descs, strict=True)):
        meta = {**base, "FeatureSpace": sp}
        written += write_statmap(
            result["unique"][k],
            mask_img,
            {**meta, "Statistic": "unique_r2", "Description": UNIQUE_DESCRIPTION},
            output_dir,
            stat="r2",
            desc="unique" + desc[:1].upper() + desc[1:],
            **common,
        )
        written += write_statmap(
            result["r2_without"][k],
            mask_img,
            {
                **meta,
                "Statistic": "r2_without",
                "Description": "Held-out r2 of the model of the other feature spaces.",
            },
            output_dir,
            stat="r2",
            desc="without" + desc[:1].upper() + desc[1:],
            **common,
        )
    return written


def pair_names(descs: Sequence[str]) -> list[tuple[str, str]]:
    """Every unordered pair of feature spaces, in order (one report figure each)."""
    return [(a, b) for i, a in enumerate(descs) for b in descs[i + 1 :]]
