"""Reading the ZeroSpeech item file; the frames of an item."""

from __future__ import annotations

import pytest

from bids_w2v.abx.items import frame_slice, read_items
from bids_w2v.errors import InputError

HEADER = "#file onset offset #phone prev-phone next-phone speaker\n"


def test_read_items(tmp_path):
    path = tmp_path / "x.item"
    path.write_text(HEADER + "f1 0.1 0.35 ae b t s1\n\nf2 0 0.2 ih b t s2\n")
    items = read_items(path)
    assert items["file"].tolist() == ["f1", "f2"]
    assert items["context"].tolist() == ["b+t", "b+t"]
    assert items["onset"].tolist() == [0.1, 0.0]


@pytest.mark.parametrize(
    "line, message",
    [
        ("f1 0.1 0.3 ae b t\n", "has 6 fields"),
        ("f1 x 0.3 ae b t s1\n", "onset 'x'"),
        ("f1 0.3 0.1 ae b t s1\n", "0 <= onset < offset"),
    ],
)
def test_bad_lines(tmp_path, line, message):
    path = tmp_path / "x.item"
    path.write_text(HEADER + line)
    with pytest.raises(InputError, match=message) as info:
        read_items(path)
    assert "Line 2" in str(info.value) and str(path) in str(info.value)


def test_missing_and_empty(tmp_path):
    with pytest.raises(InputError, match="cannot be read"):
        read_items(tmp_path / "nope.item")
    (tmp_path / "e.item").write_text(HEADER)
    with pytest.raises(InputError, match="holds no item"):
        read_items(tmp_path / "e.item")


def test_frame_slice_as_libri_light():
    # libri-light: start = ceil(rate * onset - 0.5), stop = floor(rate * offset - 0.5)
    assert frame_slice(0.1, 0.35, 50, 100) == slice(5, 17)
    assert frame_slice(0.0, 0.2, 100, 10) == slice(0, 10)  # clipped to the features
    empty = frame_slice(0.10, 0.105, 100, 100)
    assert empty.stop == empty.start
