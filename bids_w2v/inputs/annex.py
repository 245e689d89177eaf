"""Datasets as DataLad delivers them: git-annex symbolic links, fetched or not.

In a DataLad (git-annex) dataset every large file is a symbolic link into the object store of
the git repository that holds it, ``<gitdir>/annex/objects/...``; the link is broken until
``datalad get`` fetches the content. ``<gitdir>`` is the dataset's ``.git`` folder, or, in a
subdataset or a git worktree, the folder its ``.git`` *file* names (``gitdir: ...``, e.g.
``../.git/modules/ds``). In an unlocked or adjusted-branch dataset an unfetched file is a small
pointer file whose text is ``/annex/objects/KEY``.

:func:`dataset_roots` gives the folders a dataset's files may resolve into (the dataset and its
own object store), :func:`inside` checks a path against them, and :func:`not_fetched` tells an
annexed file whose content is not here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

ANNEX_OBJECTS = "annex/objects/"

#: Larger files are never read as git-annex pointer files.
POINTER_MAX_BYTES = 1024


def git_dir(worktree: Path) -> Path | None:
    """The git directory of the work tree ``worktree`` (its ``.git`` folder, or where a ``.git``
    file's ``gitdir:`` line points), or None if ``worktree`` has no ``.git``."""
    dot_git = Path(worktree) / ".git"
    if dot_git.is_dir():
        return dot_git.resolve()
    if dot_git.is_file():
        try:
            line = dot_git.read_text(errors="replace").strip().splitlines()[0]
        except (OSError, IndexError):
            return None
        if line.startswith("gitdir:"):
            return (dot_git.parent / line[len("gitdir:") :].strip()).resolve()
    return None


def annex_objects(folder: Path) -> Path | None:
    """The git-annex object store of the repository holding ``folder`` (the nearest ``.git`` at
    or above it), whether it exists yet or not; None outside any git repository."""
    start = Path(os.path.abspath(folder))
    for candidate in (start, *start.parents):
        gitdir = git_dir(candidate)
        if gitdir is not None:
            common = gitdir / "commondir"  # a git worktree: the objects are the main tree's
            if common.is_file():
                gitdir = (gitdir / common.read_text().strip()).resolve()
            return gitdir / "annex" / "objects"
    return None


def dataset_roots(dataset: Path, *folders: Path) -> tuple[Path, ...]:
    """The folders the files of ``dataset`` may resolve into: the dataset itself, the folders
    given (e.g. its ``stimuli/``, which may be a link), and the git-annex object store of the
    repository holding the dataset and of the one holding each folder (a subdataset such as
    ``stimuli/`` has its own)."""
    roots = [Path(dataset).resolve(), *(Path(f).resolve() for f in folders)]
    for folder in (dataset, *folders):
        store = annex_objects(folder)
        if store is not None:
            roots.append(store)
    return tuple(dict.fromkeys(roots))


def inside(path: Path, roots: Sequence[Path]) -> bool:
    """Whether ``path``, its links followed, resolves inside one of ``roots``."""
    resolved = Path(path).resolve()
    return any(resolved == root or root in resolved.parents for root in roots)


def is_annex_link(path: Path) -> bool:
    """Whether ``path`` is a symbolic link into a git-annex object store."""
    try:
        return Path(path).is_symlink() and ANNEX_OBJECTS in os.readlink(path).replace("\\", "/")
    except OSError:
        return False


def is_annex_pointer(path: Path) -> bool:
    """Whether ``path`` is an unlocked git-annex file whose content is not here (a small text
    file holding ``/annex/objects/KEY``)."""
    try:
        if not path.is_file() or path.stat().st_size > POINTER_MAX_BYTES:
            return False
        with open(path, "rb") as fh:
            return fh.read(len(ANNEX_OBJECTS) + 1) == b"/" + ANNEX_OBJECTS.encode()
    except OSError:
        return False


def not_fetched(path: Path) -> bool:
    """Whether ``path`` is a git-annex file whose content has not been fetched (a broken link
    into an object store, or a pointer file)."""
    path = Path(path)
    return (is_annex_link(path) and not path.exists()) or is_annex_pointer(path)


def get_command(paths: Sequence[Path]) -> str:
    """The command that fetches ``paths``."""
    return "datalad get " + " ".join(str(p) for p in paths)
