"""Write files atomically: to a temporary name in the same folder, then rename.

A run killed at any moment leaves either the previous file or the complete new one, never a
truncated output.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: Path, write: Callable[[Path], None], suffix: str = "") -> Path:
    """Call ``write(tmp_path)`` then rename ``tmp_path`` to ``path``.

    Parameters
    ----------
    path : Path
        Final file name.
    write : callable
        Writes the content to the path it is given.
    suffix : str
        Suffix of the temporary file (some writers infer the format from it, e.g. ``.nii.gz``).

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None and exc.errno is not None:  # name the file (full disk)
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    """Atomically write a text file."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, data: Any) -> Path:
    """Atomically write a JSON file (sorted keys, indented)."""
    return write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_nifti(path: Path, img: Any) -> Path:
    """Atomically write a nibabel image (format from the final name's extension)."""
    ext = "".join(Path(path).suffixes[-2:]) if str(path).endswith(".gz") else Path(path).suffix
    return atomic_write(path, lambda tmp: img.to_filename(str(tmp)), suffix=ext)
