"""Stimuli in DataLad/git-annex datasets: links into the dataset's own object store accepted,
links elsewhere refused, unfetched content named with the ``datalad get`` fix.

The git-annex cases build real repositories with ``git annex`` (skipped where it is absent);
the subdataset case lays out the ``.git`` file and ``.git/modules`` folder as git does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bids_w2v.errors import InputError
from bids_w2v.inputs.annex import annex_objects, dataset_roots, inside, not_fetched
from bids_w2v.inputs.events import read_presentations

needs_annex = pytest.mark.skipif(shutil.which("git-annex") is None, reason="git-annex absent")

EVENTS = "onset\tduration\tstim_file\n0\t1\tstory.wav\n"


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def annex_dataset(root: Path, audio: bytes = b"RIFF-audio") -> Path:
    """A git-annex repository whose stimuli/story.wav is annexed (a link into .git/annex)."""
    (root / "stimuli").mkdir(parents=True)
    (root / "stimuli" / "story.wav").write_bytes(audio)
    _git(root, "init", "-q")
    _git(root, "annex", "init", "-q", "test")
    _git(root, "annex", "add", "-q", "stimuli")
    _git(root, "commit", "-q", "-m", "stimuli")
    return root


def _events(tmp_path: Path, text: str = EVENTS) -> Path:
    path = tmp_path / "events.tsv"
    path.write_text(text)
    return path


@needs_annex
def test_fetched_annex_link_accepted(tmp_path):
    ds = annex_dataset(tmp_path / "ds")
    link = ds / "stimuli" / "story.wav"
    assert link.is_symlink() and ".git/annex/objects/" in os.readlink(link)
    (pres,) = read_presentations(_events(tmp_path), ds / "stimuli")
    assert pres.stim_file == link.absolute()  # named after the stimulus, not the annex key
    assert pres.stim_file.read_bytes() == b"RIFF-audio"


@needs_annex
def test_unfetched_annex_link_names_datalad_get(tmp_path):
    annex_dataset(tmp_path / "origin")
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", str(tmp_path / "origin"), str(clone))
    link = clone / "stimuli" / "story.wav"
    assert link.is_symlink() and not link.exists()  # content not fetched
    assert not_fetched(link)
    with pytest.raises(InputError, match="not fetched") as err:
        read_presentations(_events(tmp_path), clone / "stimuli")
    assert f"datalad get {link}" in str(err.value)
    _git(clone, "annex", "get", "-q", "stimuli/story.wav")
    assert not not_fetched(link)
    (pres,) = read_presentations(_events(tmp_path), clone / "stimuli")
    assert pres.stim_file.read_bytes() == b"RIFF-audio"


@needs_annex
def test_link_into_a_sibling_datasets_annex_refused(tmp_path):
    sibling = annex_dataset(tmp_path / "sibling", b"other dataset")
    ds = tmp_path / "ds"
    (ds / "stimuli").mkdir(parents=True)
    _git(ds, "init", "-q")
    _git(ds, "annex", "init", "-q", "test")
    target = (sibling / "stimuli" / "story.wav").resolve()
    assert str(target).startswith(str(sibling.resolve() / ".git" / "annex" / "objects"))
    os.symlink(os.path.relpath(target, ds / "stimuli"), ds / "stimuli" / "story.wav")
    with pytest.raises(InputError, match="outside the dataset"):
        read_presentations(_events(tmp_path), ds / "stimuli")


def test_subdataset_gitdir_file(tmp_path):
    """A subdataset's ``.git`` is a file (``gitdir: ../.git/modules/ds``): its annexed files
    link into the superdataset's ``.git/modules/ds/annex/objects``."""
    store = tmp_path / "super" / ".git" / "modules" / "ds" / "annex" / "objects"
    key = store / "Xx" / "Yy" / "MD5E-s5--abc.wav" / "MD5E-s5--abc.wav"
    key.parent.mkdir(parents=True)
    key.write_bytes(b"RIFF!")
    ds = tmp_path / "super" / "ds"
    (ds / "stimuli").mkdir(parents=True)
    (ds / ".git").write_text("gitdir: ../.git/modules/ds\n")
    os.symlink(os.path.relpath(key, ds / "stimuli"), ds / "stimuli" / "story.wav")
    assert annex_objects(ds / "stimuli") == store.resolve()
    assert inside(ds / "stimuli" / "story.wav", dataset_roots(ds))
    (pres,) = read_presentations(_events(tmp_path), ds / "stimuli")
    assert pres.stim_file.name == "story.wav"
    # a sibling subdataset's store is not this dataset's
    other = tmp_path / "super" / ".git" / "modules" / "other" / "annex" / "objects" / "k.wav"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"RIFF?")
    (ds / "stimuli" / "story.wav").unlink()
    os.symlink(os.path.relpath(other, ds / "stimuli"), ds / "stimuli" / "story.wav")
    with pytest.raises(InputError, match="outside the dataset"):
        read_presentations(_events(tmp_path), ds / "stimuli")


def test_links_elsewhere_still_refused(tmp_path):
    ds = tmp_path / "ds"
    (ds / "stimuli").mkdir(parents=True)
    (ds / ".git" / "annex" / "objects").mkdir(parents=True)
    os.symlink("/etc/passwd", ds / "stimuli" / "story.wav")
    with pytest.raises(InputError, match="outside the dataset"):
        read_presentations(_events(tmp_path), ds / "stimuli")
    (ds / "stimuli" / "story.wav").unlink()
    (tmp_path / "secret.wav").write_bytes(b"RIFF")
    os.symlink("../../secret.wav", ds / "stimuli" / "story.wav")  # a '..' escape by link
    with pytest.raises(InputError, match="outside the dataset"):
        read_presentations(_events(tmp_path), ds / "stimuli")
    with pytest.raises(InputError, match="not a path relative"):
        read_presentations(_events(tmp_path, EVENTS.replace("story", "../secret")), ds / "stimuli")


def test_link_inside_the_dataset_accepted(tmp_path):
    """The confinement is to the dataset, not to stimuli/ itself."""
    ds = tmp_path / "ds"
    (ds / "stimuli").mkdir(parents=True)
    (ds / "sourcedata").mkdir()
    (ds / "sourcedata" / "story.wav").write_bytes(b"RIFF")
    os.symlink("../sourcedata/story.wav", ds / "stimuli" / "story.wav")
    (pres,) = read_presentations(_events(tmp_path), ds / "stimuli")
    assert pres.stim_file.name == "story.wav" and pres.stim_file.read_bytes() == b"RIFF"


def test_unlocked_pointer_file_is_not_fetched(tmp_path):
    ds = tmp_path / "ds"
    (ds / "stimuli").mkdir(parents=True)
    pointer = ds / "stimuli" / "story.wav"
    pointer.write_text("/annex/objects/SHA256E-s10--0123.wav\n")
    assert not_fetched(pointer)
    with pytest.raises(InputError, match="datalad get"):
        read_presentations(_events(tmp_path), ds / "stimuli")


def test_stimuli_subdataset_store_accepted(tmp_path):
    """``stimuli/`` installed as a subdataset of the dataset has its own store."""
    ds = tmp_path / "ds"
    store = ds / ".git" / "modules" / "stimuli" / "annex" / "objects"
    key = store / "Aa" / "Bb" / "MD5E-s4--k.wav" / "MD5E-s4--k.wav"
    key.parent.mkdir(parents=True)
    key.write_bytes(b"RIFF")
    (ds / "stimuli").mkdir()
    (ds / "stimuli" / ".git").write_text("gitdir: ../.git/modules/stimuli\n")
    os.symlink(os.path.relpath(key, ds / "stimuli"), ds / "stimuli" / "story.wav")
    (pres,) = read_presentations(_events(tmp_path), ds / "stimuli")
    assert pres.stim_file.read_bytes() == b"RIFF"


def test_folder_link_out_of_the_dataset_refused(tmp_path):
    """``stimuli/sub`` linking to a folder outside the dataset does not widen the roots."""
    ds = tmp_path / "ds"
    (ds / "stimuli").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    (outside / ".git" / "annex" / "objects").mkdir(parents=True)
    (outside / "story.wav").write_bytes(b"RIFF")
    os.symlink(outside, ds / "stimuli" / "sub")
    with pytest.raises(InputError, match="outside the dataset"):
        read_presentations(_events(tmp_path, EVENTS.replace("story", "sub/story")), ds / "stimuli")
