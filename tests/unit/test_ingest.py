"""Parser tests on hand-made good and bad files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import write_gz
from unger.data.ingest import RawDataError, check_bad_lines, parse_meta, parse_reviews

GOOD = b'{"reviewerID": "U1", "asin": "A1", "unixReviewTime": 100, "reviewTime": "x"}\n'


def test_reviews_good_lines(tmp_path: Path):
    path = write_gz(tmp_path / "r.json.gz", GOOD + b'{"reviewerID": "U2", "asin": "A2", "unixReviewTime": 5}\n')
    frame, bad = parse_reviews(path)
    assert bad == []
    assert frame.to_dict("list") == {
        "reviewer_id": ["U1", "U2"],
        "asin": ["A1", "A2"],
        "timestamp": [100, 5],
        "line": [1, 2],
    }


@pytest.mark.parametrize(
    "line, field, reason",
    [
        (b'{"reviewerID": "U1", "asin": "A1", "unixReviewTime": 1', "<line>", "invalid JSON"),
        (b'{"asin": "A1", "unixReviewTime": 1}', "reviewerID", "missing"),
        (b'{"reviewerID": "U1", "unixReviewTime": 1}', "asin", "missing"),
        (b'{"reviewerID": "U1", "asin": "A1"}', "unixReviewTime", "missing"),
        (b'{"reviewerID": "U1", "asin": "A1", "unixReviewTime": "1"}', "unixReviewTime", "integer"),
        (b'{"reviewerID": 7, "asin": "A1", "unixReviewTime": 1}', "reviewerID", "string"),
        (b'["U1", "A1", 1]', "<line>", "JSON object"),
        (b'{"reviewerID": "U\xff1", "asin": "A1", "unixReviewTime": 1}', "<line>", "UTF-8"),
    ],
)
def test_reviews_bad_line_names_file_line_and_field(tmp_path: Path, line: bytes, field: str, reason: str):
    path = write_gz(tmp_path / "r.json.gz", GOOD + line + b"\n" + GOOD)
    frame, bad = parse_reviews(path)
    assert len(frame) == 2
    assert len(bad) == 1
    assert (bad[0].path, bad[0].lineno, bad[0].field) == (str(path), 2, field)
    assert reason in bad[0].reason
    assert f"{path}:2: field '{field}'" in str(bad[0])


def test_truncated_gzip_is_reported_with_line(tmp_path: Path):
    whole = tmp_path / "whole.json.gz"
    write_gz(whole, GOOD * 2000)
    data = whole.read_bytes()
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(data[: len(data) // 2])
    frame, bad = parse_reviews(cut)
    assert 0 < len(frame) < 2000
    assert bad[-1].field == "<file>"
    assert "gzip" in bad[-1].reason
    assert bad[-1].lineno > len(frame)


def test_check_bad_lines_tolerance_and_message(tmp_path: Path):
    lines = b"".join([GOOD] + [b"not json\n"] * 7)
    path = write_gz(tmp_path / "r.json.gz", lines)
    _, bad = parse_reviews(path)
    assert len(bad) == 7
    check_bad_lines(bad, max_bad_lines=7)
    with pytest.raises(RawDataError) as err:
        check_bad_lines(bad, max_bad_lines=6)
    message = str(err.value)
    assert "7 malformed line(s)" in message and "max_bad_lines=6" in message
    assert f"{path}:2:" in message and f"{path}:6:" in message and "and 2 more" in message


def test_meta_python_literals_json_and_html(tmp_path: Path):
    payload = (
        b"{'asin': 'A1', 'title': 'Cr&egrave;me &amp; Co', 'categories': [['Beauty', 'Skin &amp; Care']], 'brand': 'X'}\n"
        b'{"asin": "A2", "title": "Json line", "categories": [["Beauty"]]}\n'
        b"{'asin': 'A3', 'title': 'not kept'}\n"
    )
    path = write_gz(tmp_path / "m.json.gz", payload)
    frame, bad = parse_meta(path, keep_asins={"A1", "A2"})
    assert bad == []
    rows = frame.set_index("asin").to_dict("index")
    assert rows["A1"] == {"title": "Crème & Co", "brand": "X", "categories": ["Beauty > Skin & Care"]}
    assert rows["A2"]["title"] == "Json line" and pd.isna(rows["A2"]["brand"])


def test_meta_never_evaluates_code(tmp_path: Path):
    marker = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch()\n".encode() + b"{'asin': 'A1'}\n"
    path = write_gz(tmp_path / "m.json.gz", payload)
    frame, bad = parse_meta(path)
    assert not marker.exists()
    assert len(bad) == 1 and bad[0].lineno == 1 and bad[0].field == "<line>"
    assert frame["asin"].tolist() == ["A1"]


def test_meta_bad_fields(tmp_path: Path):
    payload = b"{'title': 'no asin'}\n{'asin': 'A2', 'title': 5}\n{'asin': 'A3', 'categories': 'Beauty'}\n"
    path = write_gz(tmp_path / "m.json.gz", payload)
    frame, bad = parse_meta(path)
    assert [(b.lineno, b.field) for b in bad] == [(1, "asin"), (2, "title"), (3, "categories")]
    assert frame["asin"].tolist() == ["A2", "A3"]


def test_uncompressed_files_are_read_too(tmp_path: Path):
    path = tmp_path / "r.json"
    path.write_bytes(GOOD)
    frame, bad = parse_reviews(path)
    assert len(frame) == 1 and bad == []
    with gzip.open(tmp_path / "x.gz", "wb") as fh:
        fh.write(GOOD)
