"""Report section of the joint model (``--joint``): variance partitioning, one figure per pair.

For every pair of feature spaces ``(A, B)`` of the joint model, a figure: each voxel's unique r²
of ``A`` against that of ``B`` (2-D histogram; points above the diagonal are better explained
by ``B`` alone), and the partition of the joint r² over the voxels where the joint model
predicts (r² > 0): unique ``A``, unique ``B``, shared. Used by the participant report (the
participant's maps) and the group report (the group means).
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from bids_w2v.outputs.maps import load_map_data, read_sidecar
from bids_w2v.reports.html import figure_png, img_tag

__all__ = ["joint_maps", "joint_section", "pair_png"]


def joint_maps(files: Iterable[Path]) -> dict[str, tuple[dict, np.ndarray]]:
    """The joint-model r² maps (participant ``stat-r2``, group ``stat-meanr2``) among ``files``:
    ``desc`` -> (sidecar, values)."""
    out = {}
    for f in sorted(files, key=str):
        name = Path(f).name
        if not ("_stat-r2_" in name or "_stat-meanr2_" in name) or "_hemi-R_" in name:
            continue
        meta = read_sidecar(f)
        if "JointModel" not in meta:
            continue
        desc = name.split("_desc-")[1].split("_")[0]
        out[desc] = (meta, np.asarray(load_map_data(f), dtype=np.float64).ravel())
    return out


def pair_png(name_a: str, name_b: str, unique_a, unique_b, joint, shared) -> bytes:
    """Unique r² of ``A`` against ``B`` per voxel, and the partition of the joint r²."""
    ok = np.isfinite(unique_a) & np.isfinite(unique_b) & np.isfinite(joint) & (joint != 0)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6), width_ratios=(1.2, 1))
    a, b = unique_a[ok], unique_b[ok]
    if a.size:
        lim = float(np.nanmax(np.abs(np.concatenate([a, b])))) or 1.0
        ax1.hist2d(a, b, bins=40, range=[[-lim, lim], [-lim, lim]], cmap="magma", cmin=1)
        ax1.plot([-lim, lim], [-lim, lim], color="0.5", lw=0.8)
    ax1.axhline(0, color="0.7", lw=0.6)
    ax1.axvline(0, color="0.7", lw=0.6)
    ax1.set_xlabel(f"unique r² {name_a}")
    ax1.set_ylabel(f"unique r² {name_b}")
    pos = ok & (joint > 0)
    parts = [unique_a[pos], unique_b[pos], shared[pos], joint[pos]]
    means = [float(p.mean()) if p.size else 0.0 for p in parts]
    labels = [f"unique\n{name_a}", f"unique\n{name_b}", "shared", "joint"]
    ax2.bar(range(4), means, color=["tab:blue", "tab:orange", "tab:gray", "k"])
    ax2.set_xticks(range(4), labels, fontsize=7)
    ax2.set_ylabel(f"mean r² ({int(pos.sum())} voxels with joint r² > 0)", fontsize=8)
    ax2.axhline(0, color="0.6", lw=0.8)
    for ax in (ax1, ax2):
        ax.spines[["top", "right"]].set_visible(False)
    return figure_png(fig)


def joint_section(files: Iterable[Path], heading: str = "Joint model (--joint)") -> str:
    """HTML of the joint model: its spaces and one figure per pair (empty without maps)."""
    maps = joint_maps(files)
    joint = {d: v for d, v in maps.items() if d.startswith("joint")}
    if not joint:
        return ""
    parts = [f"<h2>{html.escape(heading)}</h2>"]
    for jdesc, (meta, r2) in joint.items():
        spaces = meta["JointModel"]["FeatureSpaces"]
        shared = maps.get("shared" + jdesc[len("joint") :], (None, np.full_like(r2, np.nan)))[1]
        names = ", ".join(f"{s['ModelLabel']} {s['LayerName']}" for s in spaces)
        parts.append(
            f"<p>Banded ridge of {html.escape(names)} (one regularisation per space and voxel). "
            "Unique r² of a space: the joint model's held-out r² minus that of the model "
            "without it; shared: the joint r² minus every unique part.</p>"
        )
        for i, sa in enumerate(spaces):
            for sb in spaces[i + 1 :]:
                ua = maps.get("unique" + sa["Desc"][:1].upper() + sa["Desc"][1:])
                ub = maps.get("unique" + sb["Desc"][:1].upper() + sb["Desc"][1:])
                if ua is None or ub is None:
                    continue
                png = pair_png(sa["Desc"], sb["Desc"], ua[1], ub[1], r2, shared)
                parts.append(
                    f"<h3>{html.escape(sa['Desc'])} and {html.escape(sb['Desc'])}</h3>"
                    + img_tag(png, f"unique variance of {sa['Desc']} and {sb['Desc']}")
                )
    return "".join(parts)
