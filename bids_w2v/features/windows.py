"""Geometry of windowed extraction: model frame hop, receptive field and analysis windows.

Sample-level arithmetic only (no forward pass): which ``(start, end)`` windows of the stimulus
go through the model, for the overlapping windows of Millet, Caucheteux et al. (2022) and for
causal extraction, and how consecutive windows are grouped into batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # arithmetic only: torch is not needed at run time
    from torch import nn

__all__ = [
    "batch_windows",
    "model_hop",
    "plan_causal_windows",
    "plan_windows",
    "receptive_field",
]


def model_hop(model: nn.Module) -> int:
    """Samples between consecutive model frames (product of the conv strides, 320 for wav2vec2)."""
    from bids_w2v.features.families import family_hop

    return family_hop(model)


def receptive_field(model: nn.Module) -> int:
    """Samples seen by one frame of the conv front end (400 for wav2vec2)."""
    from bids_w2v.features.families import family_receptive_field

    return family_receptive_field(model)


def plan_windows(
    n_samples: int, window: int | None, stride: int, hop: int, field: int
) -> list[tuple[int, int]]:
    """Return the ``(start, end)`` samples of the analysis windows.

    Parameters
    ----------
    n_samples : int
        Length of the stimulus.
    window : int or None
        Window length in samples; None (or longer than the stimulus) gives one window.
    stride : int
        Samples between window starts, a multiple of ``hop``.
    hop : int
        Samples per model frame.
    field : int
        Receptive field of one frame, in samples.

    Returns
    -------
    list of tuple of int
        Windows start at 0, stride, 2 * stride ...; the last one ends at the stimulus end and
        no window starts once a previous one reached the end. A final piece shorter than the
        receptive field is replaced by a window of about ``window`` samples ending at the end.
    """
    if window is None or window >= n_samples:
        return [(0, n_samples)]
    bounds = []
    start = 0
    while True:
        end = min(start + window, n_samples)
        if end - start < field:
            start = -(-(n_samples - window) // hop) * hop
            end = n_samples
        bounds.append((start, end))
        if end >= n_samples:
            return bounds
        start += stride


def plan_causal_windows(
    n_samples: int, window: int, stride: int, hop: int, field: int
) -> list[tuple[int, int]]:
    """Return the ``(start, end)`` samples of the windows of causal extraction.

    Windows end every ``stride`` samples (and at the stimulus end) and reach at most
    ``window`` samples into the past (their start is rounded up to a whole frame, and is 0
    at the beginning of the stimulus). Windows too short to hold one receptive field are
    skipped.

    Parameters
    ----------
    n_samples : int
        Length of the stimulus.
    window : int
        Longest window, in samples.
    stride : int
        Samples between window ends, a multiple of ``hop``.
    hop : int
        Samples per model frame.
    field : int
        Receptive field of one frame, in samples.

    Returns
    -------
    list of tuple of int
        Windows in order of their end.
    """
    bounds = []
    ends = list(range(stride, n_samples, stride)) + [n_samples]
    for end in ends:
        start = max(0, -(-(end - window) // hop) * hop)
        if end - start >= field:
            bounds.append((start, end))
    return bounds


def batch_windows(
    windows: Sequence[tuple[int, int]], batch_size: int
) -> list[list[tuple[int, int]]]:
    """Group consecutive windows of equal length, at most ``batch_size`` at a time."""
    batches: list[list[tuple[int, int]]] = []
    for bound in windows:
        last = batches[-1] if batches else None
        same = last and len(last) < batch_size and last[0][1] - last[0][0] == bound[1] - bound[0]
        if same:
            last.append(bound)
        else:
            batches.append([bound])
    return batches
