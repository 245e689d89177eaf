"""Progress bar of feature extraction: seconds of audio done and the real-time factor."""

from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm

__all__ = ["ExtractionProgress"]


class ExtractionProgress:
    """A tqdm bar on stderr counting seconds of audio, with the real-time factor as postfix.

    The real-time factor (RTF) is the wall time spent so far divided by the seconds of audio
    done: below 1, extraction is faster than real time.

    Parameters
    ----------
    total_s : float
        Duration of the stimulus in seconds.
    desc : str
        Label shown before the bar (the model label and stimulus name).
    enabled : bool
        Show the bar (``verbosity > 0``); when False nothing is written.
    """

    def __init__(self, total_s: float, desc: str, enabled: bool) -> None:
        self.done_s = 0.0
        self._start = time.perf_counter()
        self._bar = tqdm(
            total=round(float(total_s), 2),
            desc=desc,
            unit="s",
            file=sys.stderr,
            disable=not enabled,
            bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s audio [{elapsed}<{remaining}{postfix}]",
        )

    @property
    def rtf(self) -> float:
        """Wall seconds per second of audio so far (nan before any audio is done)."""
        if self.done_s <= 0:
            return float("nan")
        return (time.perf_counter() - self._start) / self.done_s

    def advance_to(self, seconds: float) -> None:
        """Mark the audio up to ``seconds`` as done (never moves backwards)."""
        seconds = min(float(seconds), float(self._bar.total))
        if seconds <= self.done_s:
            return
        self._bar.update(seconds - self.done_s)
        self.done_s = seconds
        self._bar.set_postfix_str(f"RTF {self.rtf:.2f}", refresh=False)

    def close(self) -> None:
        """Close the bar."""
        self._bar.close()

    def __enter__(self) -> ExtractionProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
