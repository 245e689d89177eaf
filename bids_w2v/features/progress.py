"""Progress of feature extraction: seconds of audio done and the real-time factor."""

from __future__ import annotations

import time

from bids_w2v.progress import Progress

__all__ = ["ExtractionProgress"]


class ExtractionProgress(Progress):
    """Progress in seconds of audio, with the real-time factor after the bar.

    Under ``bids-w2v`` the state goes to the run's progress folder, which the command draws
    (:mod:`bids_w2v.progress`); otherwise a tqdm bar on stderr when ``enabled``. The real-time
    factor (RTF) is the wall time spent so far divided by the seconds of audio done: below 1,
    extraction is faster than real time.

    Parameters
    ----------
    total_s : float
        Duration of the audio in seconds.
    desc : str
        Label shown before the bar (the model label and stimulus name).
    enabled : bool
        Draw the bar outside a ``bids-w2v`` run; when False nothing is written there.
    """

    def __init__(self, total_s: float, desc: str, enabled: bool) -> None:
        super().__init__(round(float(total_s), 2), desc, "s audio", enabled=enabled)
        self._start = time.perf_counter()

    @property
    def rtf(self) -> float:
        """Wall seconds per second of audio so far (nan before any audio is done)."""
        if self.done <= 0:
            return float("nan")
        return (time.perf_counter() - self._start) / self.done

    @property
    def done_s(self) -> float:
        """Seconds of audio done."""
        return self.done

    def advance_to(self, seconds: float) -> None:
        """Mark the audio up to ``seconds`` as done (never moves backwards)."""
        before = self.done
        super().advance_to(seconds)
        if self.done > before:
            self.set_postfix_str(f"RTF {self.rtf:.2f}")
