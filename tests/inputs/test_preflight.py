"""The pre-flight check: empty, truncated, unreadable and unfetched files, found cheaply and
reported together; damaged files met while reading named in one paragraph."""

from __future__ import annotations

import gzip
import os

import nibabel as nb
import numpy as np
import pytest

from bids_w2v.errors import InputError
from bids_w2v.inputs.preflight import (
    check_files,
    check_inputs,
    damaged_file_error,
    file_problem,
    gzip_length,
    reading,
)


@pytest.fixture
def bold(tmp_path):
    """A 4-D float32 NIfTI, saved as .nii.gz and .nii."""
    data = np.random.default_rng(0).normal(size=(6, 5, 4, 30)).astype(np.float32)
    img = nb.Nifti1Image(data, np.eye(4))
    nb.save(img, tmp_path / "bold.nii.gz")
    nb.save(img, tmp_path / "bold.nii")
    return tmp_path / "bold.nii.gz", tmp_path / "bold.nii"


def _truncate(path, dest, fraction=0.6):
    data = path.read_bytes()
    dest.write_bytes(data[: int(len(data) * fraction)])
    return dest


def test_sound_files_pass(bold, tmp_path):
    tsv = tmp_path / "confounds.tsv"
    tsv.write_text("a\tb\n1\t2\n")
    assert check_files([*bold, tsv, None]) == []


def test_empty_file(tmp_path):
    empty = tmp_path / "sub-01_desc-preproc_bold.nii.gz"
    empty.touch()
    assert file_problem(empty).problem == "is empty (0 bytes)"


def test_truncated_nifti(bold, tmp_path):
    gz, nii = bold
    problem = file_problem(_truncate(nii, tmp_path / "short.nii"))
    expected = 352 + 6 * 5 * 4 * 30 * 4  # vox_offset + data bytes, from the array we wrote
    assert problem.problem.startswith("is truncated") and str(expected) in problem.problem
    assert "truncated" in file_problem(_truncate(gz, tmp_path / "short.nii.gz")).problem
    assert "header cannot be read" in file_problem(_truncate(nii, tmp_path / "h.nii", 0.01)).problem


def test_multi_member_gzip_is_not_refused(bold, tmp_path):
    """A .nii.gz in two gzip members (as pigz or concatenation writes) has a trailer that
    gives the last member's length only: the stream is read to its end to decide."""
    raw = gzip.decompress(bold[0].read_bytes())
    two = tmp_path / "two.nii.gz"
    two.write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]))
    assert gzip_length(two) == len(raw)
    assert file_problem(two) is None
    np.testing.assert_array_equal(nb.load(two).get_fdata(), nb.load(bold[1]).get_fdata())


def test_truncated_gifti(tmp_path):
    darray = nb.gifti.GiftiDataArray(np.ones((20, 3), np.float32), intent="NIFTI_INTENT_NONE")
    path = tmp_path / "hemi-L_bold.func.gii"
    nb.save(nb.gifti.GiftiImage(darrays=[darray]), path)
    assert file_problem(path) is None
    problem = file_problem(_truncate(path, tmp_path / "short.func.gii"))
    assert "does not end with </GIFTI>" in problem.problem


def test_truncated_cifti(tmp_path):
    axes = (
        nb.cifti2.SeriesAxis(0, 2.0, 10),
        nb.cifti2.BrainModelAxis.from_mask(np.ones(50, bool), name="CortexLeft"),
    )
    img = nb.cifti2.Cifti2Image(np.ones((10, 50), np.float32), header=axes)
    path = tmp_path / "bold.dtseries.nii"
    nb.save(img, path)
    assert file_problem(path) is None
    assert "truncated" in file_problem(_truncate(path, tmp_path / "s.dtseries.nii", 0.9)).problem


def test_broken_link_and_missing(tmp_path):
    os.symlink(tmp_path / "nowhere.nii.gz", tmp_path / "link.nii.gz")
    assert file_problem(tmp_path / "link.nii.gz").problem == "is a broken symbolic link"
    assert file_problem(tmp_path / "absent.tsv").problem == "does not exist"


def test_all_problems_in_one_paragraph(bold, tmp_path):
    empty = tmp_path / "empty.nii.gz"
    empty.touch()
    short = _truncate(bold[1], tmp_path / "short.nii")
    pointer = tmp_path / "story.wav"  # an unlocked git-annex file not fetched
    pointer.write_text("/annex/objects/SHA256E-s9--ab.wav\n")
    with pytest.raises(InputError) as err:
        check_inputs([bold[0], empty, short, pointer], what="input file(s)", fix="Replace them.")
    text = str(err.value)
    assert text.startswith("3 input file(s) cannot be read: ")
    assert f"{empty} is empty" in text and f"{short} is truncated" in text
    assert f"{pointer} not fetched" in text and f"`datalad get {pointer}`" in text
    assert "Replace them." in text and "\n" not in text and str(bold[0]) not in text


def test_damaged_file_met_while_reading(bold, tmp_path):
    """A .nii.gz cut short whose last 4 bytes happen to equal the header's length passes the
    cheap check; reading it names the file in one paragraph."""
    gz = bold[0]
    raw_len = len(gzip.decompress(gz.read_bytes()))
    forged = tmp_path / "forged.nii.gz"
    forged.write_bytes(gz.read_bytes()[:-4000] + raw_len.to_bytes(4, "little"))
    assert file_problem(forged) is None  # the trailer agrees: the cheap check passes
    with pytest.raises(InputError, match="forged.nii.gz") as err:
        with reading([forged]):
            nb.load(forged).get_fdata()
    assert "damaged" in str(err.value) and "EOFError" in str(err.value)
    assert "\n" not in str(err.value)
    error = damaged_file_error(tmp_path / "gone.nii.gz", EOFError("Compressed file ended"))
    assert f"{tmp_path / 'gone.nii.gz'} does not exist." in str(error)
