"""Pre-flight check of every file a run will read, before any computation.

Each file is checked cheaply, so that a dataset with missing, unfetched or damaged files fails in
seconds with ONE message listing every such file, its problem and the fix, instead of a crash
deep in the graph:

- it exists and is not a broken symbolic link; a DataLad/git-annex file whose content has not
  been fetched (a broken link into ``.git/annex/objects``, or an unlocked pointer file) is named
  as such, with the ``datalad get`` command that fetches it (:mod:`bids_w2v.inputs.annex`);
- it is not empty (0 bytes: an interrupted download, the bids-examples fMRIPrep layouts);
- NIfTI and CIFTI (``.nii``, ``.nii.gz``, ``.dtseries.nii``, ``.dscalar.nii``): the header reads
  and the file holds the data the header announces (``vox_offset + prod(shape) * itemsize``
  bytes). For ``.nii`` that is the file size. For ``.nii.gz`` it is the gzip trailer's
  uncompressed length (ISIZE, the last 4 bytes, modulo 4 GiB): one seek, whatever the file's
  size, and a truncated stream ends with compressed bytes that almost never equal it. Only
  when the trailer disagrees (a multi-member gzip, or a damaged file) is the stream
  decompressed to its end to decide, so a sound file is never refused on the trailer alone.
  Damage inside a complete stream is not looked for (it would cost a full decompression of
  every run); reading such a file later raises :func:`damaged_file_error`, one paragraph
  naming the file, from inside the graph node;
- GIfTI (``.gii``): the XML ends with ``</GIFTI>`` (a truncated file does not); the file is
  parsed when it is used;
- anything else (TSV, audio, JSON): exists, fetched, not empty.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nibabel as nb
import numpy as np

from bids_w2v.errors import InputError
from bids_w2v.inputs.annex import get_command, not_fetched

#: Exceptions raised by reading a damaged file (nibabel, gzip, zlib, the OS).
READ_ERRORS = (OSError, EOFError, zlib.error, nb.filebasedimages.ImageFileError, ValueError)

#: Files named one by one in a message; beyond, their count and folders.
MAX_LISTED = 12


@dataclass(frozen=True)
class Problem:
    """What is wrong with one input file."""

    path: Path
    problem: str
    fetch: bool = False  # a git-annex file to fetch (``datalad get``)


def _nifti_bytes(img) -> int | None:
    """Bytes the header of a loaded NIfTI/CIFTI announces (offset + data), if known."""
    proxy = img.dataobj
    try:
        offset, shape, dtype = int(proxy.offset), proxy.shape, np.dtype(proxy.dtype)
    except (AttributeError, TypeError):
        return None
    return offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


def gzip_length(path: Path) -> int | None:
    """Uncompressed length of a whole gzip file (all its members), or None if it ends early or
    is corrupt. Reads the file once, in bounded memory."""
    total, decomp, fed, pending = 0, zlib.decompressobj(16 + zlib.MAX_WBITS), False, b""
    with open(path, "rb") as fh:
        while data := pending or fh.read(1 << 20):
            pending, fed = b"", True
            try:
                total += len(decomp.decompress(data, 1 << 24))
                while decomp.unconsumed_tail:
                    total += len(decomp.decompress(decomp.unconsumed_tail, 1 << 24))
            except zlib.error:
                return None
            if decomp.eof:  # the next member, if any (zero padding ends the file)
                pending = decomp.unused_data if decomp.unused_data.strip(b"\0") else b""
                decomp, fed = zlib.decompressobj(16 + zlib.MAX_WBITS), False
    return None if fed else total


def _gzip_trailer(path: Path) -> int:
    with open(path, "rb") as fh:
        fh.seek(-4, 2)
        return int.from_bytes(fh.read(4), "little")


def _nifti_problem(path: Path, size: int) -> str | None:
    try:
        img = nb.load(str(path))
    except Exception as exc:  # nibabel raises many types for unreadable headers
        if path.name.endswith(".gz") and gzip_length(path) is None:
            return "is truncated: its gzip stream ends early"
        return f"its header cannot be read ({' '.join(str(exc).split())})"
    expected = _nifti_bytes(img)
    if expected is None:
        return None
    if path.name.endswith(".gz"):
        if size >= 18 and _gzip_trailer(path) == expected % 2**32:
            return None
        length = gzip_length(path)
        if length is None:
            return "is truncated: its gzip stream ends early"
        if length < expected:
            return f"is truncated: {length} bytes uncompressed, its header announces {expected}"
        return None
    if size < expected:
        return f"is truncated: {size} bytes, its header announces {expected}"
    return None


def _gifti_problem(path: Path, size: int) -> str | None:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            if opener is open:
                fh.seek(max(0, size - 256))
            tail = fh.read()[-256:]
    except READ_ERRORS as exc:
        return f"cannot be read ({exc})"
    if b"</GIFTI>" not in tail:
        return "is truncated: its XML does not end with </GIFTI>"
    return None


def file_problem(path: Path) -> Problem | None:
    """What is wrong with one input file (None: it can be read)."""
    path = Path(path)
    if not_fetched(path):
        return Problem(path, "not fetched", fetch=True)
    if path.is_symlink() and not path.exists():
        return Problem(path, "is a broken symbolic link")
    if not path.exists():
        return Problem(path, "does not exist")
    if not path.is_file():
        return Problem(path, "is not a file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        return Problem(path, f"cannot be read ({exc.strerror or exc})")
    if size == 0:
        return Problem(path, "is empty (0 bytes)")
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        problem = _nifti_problem(path, size)
    elif name.endswith((".gii", ".gii.gz")):
        problem = _gifti_problem(path, size)
    else:
        problem = None
    return Problem(path, problem) if problem else None


def check_files(paths: Iterable[Path | None]) -> list[Problem]:
    """The problems of ``paths`` (each file checked once, in order; None entries skipped)."""
    seen, problems = set(), []
    for path in paths:
        if path is None or Path(path) in seen:
            continue
        seen.add(Path(path))
        problem = file_problem(Path(path))
        if problem is not None:
            problems.append(problem)
    return problems


def _listed(paths: list[Path]) -> list[Path]:
    if len(paths) <= MAX_LISTED:
        return paths
    return sorted({p.parent for p in paths})


def problems_error(problems: list[Problem], *, what: str, fix: str) -> InputError:
    """One paragraph listing every problem, then the fixes.

    Parameters
    ----------
    problems : list of Problem
        From :func:`check_files` (not empty).
    what : str
        What the files are (``"input file(s) of the participant level"``).
    fix : str
        How to replace damaged or missing files.
    """
    shown = problems[:MAX_LISTED]
    listed = "; ".join(f"{p.path} {p.problem}" for p in shown)
    rest = sorted({str(p.path.parent) for p in problems[len(shown) :]})
    more = f"; and {len(problems) - len(shown)} more in {', '.join(rest)}" if rest else ""
    text = f"{len(problems)} {what} cannot be read: {listed}{more}."
    fetch = [p.path for p in problems if p.fetch]
    if fetch:
        text += (
            " The files not fetched are DataLad/git-annex files whose content is not here (a "
            "dataset installed with `datalad install` or `datalad clone` holds only links until "
            f"then): run `{get_command(_listed(fetch))}` (or `git annex get` in their dataset)."
        )
    if len(fetch) < len(problems):
        text += f" {fix}"
    return InputError(text + " Then run bids-w2v again.")


def check_inputs(paths: Iterable[Path | None], *, what: str, fix: str) -> None:
    """Raise one :class:`InputError` listing every problem of ``paths`` (see the module)."""
    problems = check_files(paths)
    if problems:
        raise problems_error(problems, what=what, fix=fix)


def damaged_file_error(files: Path | str | Sequence[Path | str], exc: BaseException) -> InputError:
    """The one-paragraph error of input files found damaged while they are read (inside a
    node): the file with a detectable problem, else all of them with the reader's error."""
    paths = [Path(files)] if isinstance(files, (str, Path)) else [Path(f) for f in files]
    problems = check_files(paths)
    if problems and all(p.fetch for p in problems):
        return problems_error(problems, what="input file(s)", fix="")
    if problems:
        listed = "; ".join(f"{p.path} {p.problem}" for p in problems)
    else:
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        listed = f"{', '.join(map(str, paths))} cannot be read ({reason}), although its header is"
        listed += " sound: the file is damaged (truncated by a full disk or an interrupted copy?)"
    return InputError(
        f"{listed}. Replace it with a complete copy (download or fetch it again, or re-run the "
        "program that wrote it), then run bids-w2v again."
    )


@contextmanager
def reading(files: Path | str | Sequence[Path | str]) -> Iterator[None]:
    """Turn a read error of ``files`` (truncated, corrupt, not fetched) into
    :func:`damaged_file_error`; errors of bids-w2v pass through."""
    try:
        yield
    except InputError:
        raise
    except READ_ERRORS as exc:
        raise damaged_file_error(files, exc) from None
