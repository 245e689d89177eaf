"""Reliability of a run on a shared machine: concurrent jobs, full disks, read-only inputs,
private temporary files, SIGTERM."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest

from bids_w2v.cli.run import main
from tests.integration.helpers import MAPS_PER_PARTICIPANT, fit_started

needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mounting needs root"
)


def _args(root, out, model, work, *labels) -> list[str]:
    extra = ["--participant-label", *labels] if labels else []
    return [str(root), str(out), "participant", *extra, "--model", str(model), "-w", str(work)]


def _tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 (or link target) of every entry of a tree."""
    digest = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            digest[rel] = "->" + os.readlink(path)
        elif path.is_file():
            digest[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            digest[rel] = "dir"
    return digest


@contextlib.contextmanager
def _mount(*args: str):
    """``mount ARGS``; skip the test when this machine refuses (no root, no privileges)."""
    target = args[-1]
    proc = subprocess.run(["mount", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount here: {proc.stderr.strip()}")
    try:
        yield Path(target)
    finally:
        subprocess.run(["umount", "-l", target], check=False)


def _maps(out: Path) -> dict[str, np.ndarray]:
    return {
        str(p.relative_to(out)): np.asarray(nb.load(p).dataobj)
        for p in sorted(out.glob("sub-*/func/*_statmap.nii.gz"))
    }


@pytest.mark.slow
def test_concurrent_jobs_share_one_output_folder(
    sim_dataset, tiny_model, participant_run, tmp_path
):
    """Two participant jobs (a SLURM array) writing into one OUTPUT_DIR at the same time, with
    one shared feature cache, give valid metadata and the maps of one job running both
    (``participant_run``, tests/integration/conftest.py)."""
    root, _, _ = sim_dataset
    out, cache = tmp_path / "out", tmp_path / "cache"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bids_w2v",
             *_args(root, out, tiny_model, tmp_path / f"work{label}", label),
             "--feature-cache", str(cache)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for label in ("01", "02")
    ]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err
    desc = json.loads((out / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative"
    assert not list(out.rglob(".*.tmp*")), "no temporary file may be left behind"

    ours, theirs = _maps(out), _maps(participant_run[0])
    assert sorted(ours) == sorted(theirs) and len(ours) == 2 * MAPS_PER_PARTICIPANT
    for name, data in ours.items():  # same inputs and seed: numerically identical maps
        np.testing.assert_array_equal(data, theirs[name], err_msg=name)


@needs_root
@pytest.mark.slow
def test_full_disk_is_a_clear_error_and_leaves_no_partial_file(sim_dataset, tiny_model, tmp_path):
    root, _, _ = sim_dataset
    target = tmp_path / "small_disk"
    target.mkdir()
    with _mount("-t", "tmpfs", "-o", "size=96k", "tmpfs", str(target)) as disk:
        out = disk / "out"
        proc = subprocess.run(
            [sys.executable, "-m", "bids_w2v",
             *_args(root, out, tiny_model, tmp_path / "work", "01")],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert proc.returncode == 74, proc.stderr
        assert "Traceback" not in proc.stderr
        assert "free space" in proc.stderr and str(disk) in proc.stderr
        leftovers = [p for p in disk.rglob("*") if p.is_file() and ".tmp" in p.name]
        assert leftovers == [], "a full disk must not leave temporary files"
        for path in disk.rglob("*.json"):
            json.loads(path.read_text())  # every file that exists is complete
        for path in disk.rglob("*.nii.gz"):
            np.asarray(nb.load(path).dataobj)


@needs_root
@pytest.mark.slow
def test_read_only_inputs_are_read_and_never_modified(sim_dataset, tiny_model, tmp_path):
    """The container's documented `docker run -v DATA:/data:ro`: inputs on a read-only mount."""
    root, _, _ = sim_dataset
    source = tmp_path / "source"
    shutil.copytree(root, source)
    before = _tree_digest(source)
    ro = tmp_path / "ro"
    ro.mkdir()
    with _mount("--bind", str(source), str(ro)):
        proc = subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], capture_output=True)
        if proc.returncode != 0:
            pytest.skip("cannot remount read-only here")
        with pytest.raises(OSError):
            (ro / "probe").write_text("")
        out = tmp_path / "out"
        assert main(_args(ro, out, tiny_model, tmp_path / "work", "01")) == 0
        assert len(_maps(out)) == MAPS_PER_PARTICIPANT
    assert _tree_digest(source) == before


def test_work_dir_and_temporary_files_are_private(tmp_path):
    import tempfile

    from bids_w2v.cli.workdir import private_tmpdir

    work = tmp_path / "new_work"
    outside = tempfile.gettempdir()
    with private_tmpdir(work) as tmp:
        assert tempfile.gettempdir() == str(tmp) == os.environ["TMPDIR"]
        with tempfile.NamedTemporaryFile() as handle:
            assert Path(handle.name).parent == tmp
    assert tempfile.gettempdir() == outside
    for folder in (work, work / "tmp"):
        assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0, folder

    shared = tmp_path / "shared_work"
    shared.mkdir(mode=0o775)
    os.chmod(shared, 0o775)
    with private_tmpdir(shared):
        pass
    assert stat.S_IMODE(shared.stat().st_mode) == 0o775, "a user's folder keeps its mode"
    assert stat.S_IMODE((shared / "tmp").stat().st_mode) == 0o700


@pytest.mark.slow
def test_sigterm_stops_cleanly_and_the_rerun_completes(sim_dataset, tiny_model, tmp_path):
    """A scheduler's SIGTERM (job time limit) exits non-zero with a message, leaves no
    truncated map, and the re-run completes every map."""
    root, _, _ = sim_dataset
    out, work = tmp_path / "out", tmp_path / "work"
    args = _args(root, out, tiny_model, work, "01")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bids_w2v", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if fit_started(work):
            proc.send_signal(signal.SIGTERM)
            break
        time.sleep(0.02)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before it could be stopped")
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "terminated" in err and "--work-dir" in err and "Traceback" not in err
    assert not list(out.rglob(".*.tmp*"))
    for path in out.rglob("*.nii.gz"):
        np.asarray(nb.load(path).dataobj)
    assert main(args) == 0
    assert len(_maps(out)) == MAPS_PER_PARTICIPANT


@pytest.mark.slow
def test_constant_voxels_are_excluded_and_counted(sim_dataset, tiny_model, tmp_path):
    """A voxel that never changes (inside the mask) gets no score, and the sidecar and the
    report count it instead of the run failing."""
    root, _, _ = sim_dataset
    data = tmp_path / "ds"
    shutil.copytree(root, data)
    fmriprep = data / "derivatives" / "fmriprep" / "sub-01"
    bolds = sorted(fmriprep.rglob("*desc-preproc_bold.nii.gz"))
    assert bolds
    for path in bolds:
        img = nb.load(path)
        values = np.asarray(img.dataobj).astype(np.float32)
        values[2, 2, 2, :] = 100.0
        nb.Nifti1Image(values, img.affine, img.header).to_filename(path)
    out = tmp_path / "out"
    args = _args(data, out, tiny_model, tmp_path / "work", "01") + ["--layers", "conv1"]
    assert main(args) == 0
    (rmap,) = sorted(out.glob("sub-01/func/*Conv1_stat-r_statmap.nii.gz"))
    assert np.isnan(np.asarray(nb.load(rmap).dataobj)[2, 2, 2])
    meta = json.loads(rmap.with_name(rmap.name.replace(".nii.gz", ".json")).read_text())
    assert meta["ExcludedVoxels"]["Constant"] == 1
    assert meta["ExcludedVoxels"]["NonFinite"] == 0
    report = (out / "sub-01.html").read_text()
    assert "1 excluded (0 with NaN/Inf values, 1 constant)" in report
