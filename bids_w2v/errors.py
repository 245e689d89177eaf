"""User-facing errors.

Every problem with the user's input raises a :class:`BidsW2VError` subclass whose message is
one paragraph naming the file, what is wrong with it and how to fix it. The command line turns
these into a message on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations


class BidsW2VError(Exception):
    """Base class of all errors that are reported to the user without a traceback."""

    exit_code = 1


class InputError(BidsW2VError):
    """The dataset, derivatives, stimuli or options given by the user are unusable."""

    exit_code = 2


class ModelError(BidsW2VError):
    """The speech model cannot be loaded (missing, unsafe, or not a supported encoder)."""

    exit_code = 3


class AudioError(InputError):
    """An audio stimulus cannot be used (unreadable, empty, silent)."""


class OutputError(BidsW2VError):
    """OUTPUT_DIR or the work directory cannot be written (permissions, full disk)."""

    exit_code = 74  # EX_IOERR


def write_error(filename: str | None, reason: str) -> OutputError:
    """The one-paragraph message of a failed write.

    Parameters
    ----------
    filename : str or None
        The file or folder that could not be written.
    reason : str
        The operating system's reason (``strerror``).

    Returns
    -------
    OutputError
        Ready to raise.
    """
    where = filename or "the output or work folder"
    return OutputError(
        f"could not write {where} ({reason}). Check that OUTPUT_DIR and --work-dir are "
        "writable and that their disk has free space; re-running with the same --work-dir "
        "resumes where it stopped."
    )
