"""Datasets as DataLad delivers them: the simulated dataset made a git-annex repository for real
(``git init``, ``git annex init``, its BOLD, masks and audio annexed), then cloned as
``datalad clone`` does, without content.

Unfetched: the participant level stops before any computation with one message listing the
files and the ``datalad get`` fix. Fetched (``git annex get``): it runs, and its maps equal
those of the plain copy of the dataset (:func:`participant_run`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest

from bids_w2v.cli.run import main

pytestmark = pytest.mark.skipif(shutil.which("git-annex") is None, reason="git-annex absent")

ANNEXED = "* annex.largefiles=nothing\n*.nii.gz annex.largefiles=anything\n*.wav annex.largefiles=anything\n"  # noqa: E501


def _git(cwd: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, check=True)


@pytest.fixture(scope="module")
def annex_clone(sim_dataset, tmp_path_factory):
    """(origin, clone): the simulated dataset as a git-annex repository, and a clone of it
    holding only links (nothing fetched)."""
    base = tmp_path_factory.mktemp("datalad")
    origin = shutil.copytree(sim_dataset[0], base / "origin")
    (origin / ".gitattributes").write_text(ANNEXED)
    _git(origin, "init", "-q")
    _git(origin, "annex", "init", "-q", "origin")
    _git(origin, "annex", "add", "-q", ".")
    _git(origin, "commit", "-q", "-m", "simulated dataset")
    clone = base / "clone"
    _git(base, "clone", "-q", str(origin), str(clone))
    _git(clone, "annex", "init", "-q", "clone")
    return origin, clone


def test_unfetched_clone_stops_before_computing(annex_clone, tiny_model, tmp_path, capsys):
    _, clone = annex_clone
    bold = next((clone / "derivatives" / "fmriprep" / "sub-01" / "func").glob("*_bold.nii.gz"))
    audio = clone / "stimuli" / "barber.wav"
    assert bold.is_symlink() and not bold.exists() and ".git/annex/objects" in os.readlink(bold)
    out, work = tmp_path / "out", tmp_path / "work"
    code = main([str(clone), str(out), "participant", "--model", str(tiny_model), "-w", str(work)])
    err = capsys.readouterr().err
    assert code == 2
    assert err[err.index("bids-w2v: error: ") :].count("\n") == 1, err
    assert "Traceback" not in err
    assert "input file(s) of the participant level cannot be read" in err
    assert f"{bold.parent}/sub-01_task-listen_run-1_space" in err and "not fetched" in err
    fix = err.split("`datalad get ", 1)[1].split("`")[0].split()  # every folder to fetch
    assert sorted(fix) == sorted(
        str(p) for p in (bold.parent, bold.parent.parent.parent / "sub-02" / "func", audio.parent)
    )
    assert "git annex get" in err
    assert not (work / "crash").exists()  # stopped before the graph
    assert not list(out.glob("sub-*/func/*_statmap.*"))


def test_partly_fetched_lists_only_the_missing(annex_clone, tiny_model, tmp_path, capsys):
    origin, clone = annex_clone
    partial = tmp_path / "partial"
    _git(tmp_path, "clone", "-q", str(origin), str(partial))
    _git(partial, "annex", "get", "-q", "stimuli", "derivatives/fmriprep/sub-01")
    out, work = tmp_path / "out", tmp_path / "work"
    code = main(
        [str(partial), str(out), "participant", "--model", str(tiny_model), "-w", str(work)]
    )  # noqa: E501
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "sub-02_task-listen_run-1_space-MNI152NLin2009cAsym_desc-preproc_bold" in err
    assert "sub-01_task" not in err and "stimuli" not in err  # fetched: not listed
    assert "`datalad get " in err


@pytest.mark.slow  # a full participant run
def test_fetched_clone_runs_like_the_plain_dataset(annex_clone, participant_run, tiny_model):
    """Every BOLD, mask and stimulus is a link into .git/annex/objects: accepted, same maps."""
    origin, _ = annex_clone
    fetched = origin.parent / "fetched"
    _git(origin.parent, "clone", "-q", str(origin), str(fetched))
    _git(fetched, "annex", "get", "-q", ".")
    assert (fetched / "stimuli" / "barber.wav").is_symlink()
    out, work = fetched.parent / "out", fetched.parent / "work"
    args = ["--nprocs", "2", "--model", str(tiny_model), "-w", str(work)]
    assert main([str(fetched), str(out), "participant", *args]) == 0
    plain_out, _ = participant_run
    maps = sorted(plain_out.glob("sub-*/func/*_stat-r_statmap.nii.gz"))
    assert maps
    for plain in maps:
        annexed = out / plain.relative_to(plain_out)
        np.testing.assert_allclose(
            nb.load(annexed).get_fdata(), nb.load(plain).get_fdata(), atol=1e-6, equal_nan=True
        )
