"""`--roi-atlas templateflow:ATLAS[:DESC]`: an atlas found offline in TEMPLATEFLOW_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nibabel as nb
import numpy as np
import pytest

from bids_w2v.errors import InputError
from bids_w2v.group.roi import resolve_roi_atlas

TEMPLATE = "MNI152NLin2009cAsym"


@pytest.fixture
def tf_home(tmp_path):
    """A TemplateFlow home holding one small atlas (two descs, two resolutions)."""
    home = tmp_path / "templateflow"
    folder = home / f"tpl-{TEMPLATE}"
    folder.mkdir(parents=True)
    (home / "dataset_description.json").write_text(
        json.dumps({"Name": "TemplateFlow", "BIDSVersion": "1.1.0"})
    )
    (folder / "template_description.json").write_text(
        json.dumps({"Name": TEMPLATE, "BIDSVersion": "1.1.0", "Identifier": TEMPLATE})
    )
    labels = np.zeros((5, 5, 4), np.int16)
    labels[:2] = 1
    labels[3:] = 2
    for res in ("01", "02"):
        for desc in ("small", "large"):
            name = f"tpl-{TEMPLATE}_res-{res}_atlas-Test_desc-{desc}_dseg.nii.gz"
            nb.Nifti1Image(labels, np.eye(4)).to_filename(folder / name)
    return home


def _resolve(home, value, res="02"):
    """Resolve in a fresh process: TemplateFlow reads TEMPLATEFLOW_HOME when imported."""
    code = (
        "import sys\n"
        "from bids_w2v.errors import InputError\n"
        "from bids_w2v.group.roi import resolve_roi_atlas\n"
        "try:\n"
        f"    print(resolve_roi_atlas({value!r}, space={TEMPLATE!r}, res={res!r}))\n"
        "except InputError as exc:\n"
        "    print('ERROR', exc)\n"
    )
    env = {**os.environ, "TEMPLATEFLOW_HOME": str(home), "TEMPLATEFLOW_AUTOUPDATE": "0"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_templateflow_atlas_found_offline(tf_home):
    found = _resolve(tf_home, "templateflow:Test:small")
    assert found.endswith(f"tpl-{TEMPLATE}_res-02_atlas-Test_desc-small_dseg.nii.gz")
    assert found.startswith(str(tf_home))


def test_ambiguous_or_absent_atlas_is_a_clear_error(tf_home):
    ambiguous = _resolve(tf_home, "templateflow:Test")
    assert ambiguous.startswith("ERROR") and "2 TemplateFlow files" in ambiguous
    assert "desc-small" in ambiguous and "add :DESC" in ambiguous
    absent = _resolve(tf_home, "templateflow:HarvardOxford")
    assert absent.startswith("ERROR") and "found: none" in absent and "api.get(" in absent


def test_malformed_specification_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="expected templateflow:ATLAS"):
        resolve_roi_atlas("templateflow:a/b", space=TEMPLATE, res=None)
    with pytest.raises(InputError, match="does not exist"):
        resolve_roi_atlas(str(tmp_path / "nope.nii.gz"), space=TEMPLATE, res=None)
    atlas = tmp_path / "atlas.nii.gz"
    nb.Nifti1Image(np.ones((2, 2, 2), np.int16), np.eye(4)).to_filename(atlas)
    assert resolve_roi_atlas(str(atlas), space=TEMPLATE, res=None) == atlas
