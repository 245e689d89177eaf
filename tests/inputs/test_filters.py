"""--bids-filter-file: fMRIPrep's JSON format, checked entity names, labels only."""

from __future__ import annotations

import json

import pytest
from bids.layout import Query
from hypothesis import given, settings
from hypothesis import strategies as st

from bids_w2v.errors import InputError
from bids_w2v.inputs.filters import QUERY_KEYS, query_filters, read_filter_file

ENTITIES = ["session", "run", "acquisition", "echo", "res", "den", "direction"]
labels = st.from_regex(r"[A-Za-z0-9]{1,8}", fullmatch=True)
values = st.none() | st.just("*") | labels | st.integers(0, 99) | st.lists(labels, max_size=3)


def _write(tmp_path, data):
    path = tmp_path / "filter.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.sampled_from(QUERY_KEYS),
                       st.dictionaries(st.sampled_from(ENTITIES), values, max_size=3),
                       max_size=4))  # fmt: skip
def test_valid_filters_round_trip(tmp_path_factory, data):
    filters = read_filter_file(_write(tmp_path_factory.mktemp("f"), data))
    assert set(filters) == set(data)
    for key, entities in data.items():
        got = query_filters(filters, key)
        for name, value in entities.items():
            expected = {None: Query.NONE, "*": Query.ANY}.get(value, value) if not isinstance(
                value, list) else value  # fmt: skip
            assert got[name] == expected


@settings(max_examples=30, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_garbage_is_a_clear_error(tmp_path_factory, text):
    path = _write(tmp_path_factory.mktemp("f"), text)
    try:
        filters = read_filter_file(path)
    except InputError as exc:
        assert str(path) in str(exc)
    else:
        assert isinstance(json.loads(text), dict) and not json.loads(text)
        assert dict(filters) == {}


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ('{"bold": {"session": "01"', "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ({"t1w": {"session": "01"}}, "unknown key"),
        ({"bold": "01"}, "must map to an object"),
        ({"bold": {"sesion": "01"}}, "'sesion'"),
        ({"bold": {"subject": "02"}}, "set by the command line"),
        ({"bold": {"scope": "raw"}}, "'scope'"),
        ({"events": {"session": "../../etc"}}, "not a BIDS label"),
        ({"mask": {"run": {"a": 1}}}, "labels"),
        ({"mask": {"run": True}}, "labels"),
    ],
)
def test_bad_filters(tmp_path, data, match):
    path = _write(tmp_path, data)
    with pytest.raises(InputError, match=match) as info:
        read_filter_file(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_filter_file(tmp_path / "nope.json")


def test_no_filters():
    assert query_filters(None, "bold") == {}
