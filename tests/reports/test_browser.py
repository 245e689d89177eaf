"""The HTML reports in a real browser: headless Chromium loads each from disk, every image
decodes (naturalWidth > 0), every in-page link has a target, and a screenshot is not blank."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bids_w2v.testing.group_maps import SPACE, write_maps

COMMON = {"task": "listen", "space": SPACE, "res": None}
pytestmark = pytest.mark.slow  # figures of every layer (nilearn glass brains): ~1 min

PROBE = """
<script>
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0 && i.naturalHeight > 0));
  const ids = new Set(Array.from(document.querySelectorAll('[id]')).map(e => e.id));
  const links = Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'));
  const dead = links.filter(h => !(h.startsWith('#') && ids.has(h.slice(1))));
  const out = document.createElement('pre');
  out.id = 'probe-result';
  out.textContent = `IMAGES=${imgs.length} BROKEN=${broken.length} DEAD=${dead.join(',')}` +
    ` WIDTHS=${imgs.map(i => i.naturalWidth).join(',')}`;
  document.body.appendChild(out);
});
</script>
"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("chromium is a test dependency (.ci/apt-packages.txt) and must be installed")
    pytest.skip("chromium not installed")


def _run(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    cmd = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={tmp / 'profile'}",
        "--virtual-time-budget=10000",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def check_in_browser(report: Path, tmp: Path) -> None:
    """Load ``report`` in Chromium: images decode, links resolve, screenshot not blank."""
    from PIL import Image

    text = report.read_text()
    assert "<script" not in text, "reports are static: no script"
    assert not re.search(r'(src|href)="(?!data:|#)', text), "only embedded images, in-page links"
    probe = tmp / f"probe-{report.name}"
    probe.write_text(text.replace("</body>", PROBE + "</body>"))
    dom = _run(["--dump-dom", probe.as_uri()], tmp)
    match = re.search(r"IMAGES=(\d+) BROKEN=(\d+) DEAD=(\S*) WIDTHS=([\d,]*)", dom.stdout)
    assert match, f"the probe did not run: {dom.stderr[-2000:]}"
    n_images, broken, dead = int(match[1]), int(match[2]), match[3]
    assert n_images >= 3 and broken == 0, match[0]
    assert dead == "", f"links without a target: {dead}"
    assert all(int(w) > 50 for w in match[4].split(","))

    shot = tmp / f"{report.stem}.png"
    result = _run([f"--screenshot={shot}", "--window-size=1200,2400", report.as_uri()], tmp)
    assert shot.exists(), result.stderr[-2000:]
    with Image.open(io.BytesIO(shot.read_bytes())) as img:
        assert img.format == "PNG" and img.size == (1200, 2400)
        pixels = np.asarray(img.convert("L"), dtype=float)
    assert pixels.std() > 10, "blank screenshot"
    assert len(np.unique(pixels)) > 20
    assert (pixels < 128).mean() > 0.005, "no text or figure drawn"


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    from bids_w2v.group.collection import collect_participant_maps
    from bids_w2v.group.comparison import write_model_comparison
    from bids_w2v.group.maps import write_group_maps
    from bids_w2v.reports.group import write_group_report
    from bids_w2v.reports.participant import write_participant_report

    out = tmp_path_factory.mktemp("reports") / "bids-w2v"
    write_maps(out, subjects=("01", "02", "03", "04"), shape=(6, 6, 5))
    found = collect_participant_maps(out, None, SPACE, None)
    for label in found:
        write_group_maps(found[label], output_dir=out, model_label=label, **COMMON)
    write_model_comparison(found["tiny"], found["tinyRandom"], output_dir=out, **COMMON)
    group = write_group_report(out, **COMMON)
    sub = write_participant_report(out, "01", sorted(out.glob("sub-01/func/*.nii.gz")))
    return group, sub


def test_group_report_in_browser(reports, tmp_path):
    group, _ = reports
    check_in_browser(group, tmp_path)


def test_participant_report_in_browser(reports, tmp_path):
    _, sub = reports
    text = sub.read_text()
    assert text.count("<h2>Model ") == 2  # the trained and the random-init model
    check_in_browser(sub, tmp_path)


def test_a_broken_image_is_detected(reports, tmp_path):
    """The browser check can fail: a corrupted data URI is reported as broken."""
    group, _ = reports
    bad = tmp_path / "bad.html"
    bad.write_text(group.read_text().replace("base64,iVBOR", "base64,AAAA", 1))
    with pytest.raises(AssertionError, match="BROKEN=1"):
        check_in_browser(bad, tmp_path)
