"""Parse the official Amazon 2014 review and meta files, reporting every malformed line.

Reviews are strict JSON lines; meta files are Python dict literals (``ast.literal_eval``, never
``eval``), with JSON lines accepted too. Each bad line becomes a :class:`BadLine` naming the file,
line number and field; ``max_bad_lines`` decides whether the run goes on without them.
"""

from __future__ import annotations

import ast
import gzip
import html
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

REVIEW_FIELDS = {"reviewerID": str, "asin": str, "unixReviewTime": int}


@dataclass(frozen=True)
class BadLine:
    """One rejected input line: where it is and why."""

    path: str
    lineno: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.lineno}: field '{self.field}': {self.reason}"


class RawDataError(ValueError):
    """Raised when more malformed lines are found than ``max_bad_lines`` allows."""

    def __init__(self, bad: list[BadLine], max_bad_lines: int, shown: int = 5):
        self.bad = bad
        lines = "\n  ".join(str(b) for b in bad[:shown])
        more = f"\n  ... and {len(bad) - shown} more" if len(bad) > shown else ""
        super().__init__(
            f"{len(bad)} malformed line(s), more than max_bad_lines={max_bad_lines}:\n  {lines}{more}"
        )


def iter_lines(path: Path) -> Iterator[tuple[int, bytes | None, BadLine | None]]:
    """Yield ``(lineno, raw_line, None)`` per line, or one ``(lineno, None, BadLine)`` if the gzip
    stream breaks (a truncated or corrupt file): the lines read before it are still yielded."""
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    lineno = 0
    try:
        with opener(path, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                yield lineno, raw, None
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        yield lineno + 1, None, BadLine(str(path), lineno + 1, "<file>", f"unreadable gzip stream: {exc}")


def decoded_lines(path: Path, bad: list[BadLine]) -> Iterator[tuple[int, str]]:
    """Yield ``(lineno, text)`` for every non-blank line of ``path``; a line that is not UTF-8, or the
    break of a corrupt gzip stream, goes into ``bad`` instead."""
    for lineno, raw, broken in iter_lines(path):
        if broken is not None:
            bad.append(broken)
            return
        if not raw.strip():
            continue
        try:
            yield lineno, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad.append(BadLine(str(path), lineno, "<line>", f"not valid UTF-8 ({exc.reason} at byte {exc.start})"))


def _check_review(record: Any, path: Path, lineno: int) -> BadLine | None:
    if not isinstance(record, dict):
        return BadLine(str(path), lineno, "<line>", f"expected a JSON object, got {type(record).__name__}")
    for field, kind in REVIEW_FIELDS.items():
        if field not in record:
            return BadLine(str(path), lineno, field, "missing")
        value = record[field]
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            return BadLine(str(path), lineno, field, f"expected an integer, got {value!r}")
        if kind is str and (not isinstance(value, str) or not value):
            return BadLine(str(path), lineno, field, f"expected a non-empty string, got {value!r}")
    return None


def parse_reviews(path: Path) -> tuple[pd.DataFrame, list[BadLine]]:
    """Read a ``reviews_<Category>_5.json.gz`` file.

    Returns:
        A frame with ``reviewer_id, asin, timestamp, line`` (``line`` keeps file order for stable
        tie-breaking) and the list of rejected lines.
    """
    rows: list[tuple[str, str, int, int]] = []
    bad: list[BadLine] = []
    for lineno, text in decoded_lines(path, bad):
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            err = BadLine(str(path), lineno, "<line>", f"invalid JSON: {exc.msg} at column {exc.colno}")
        else:
            err = _check_review(record, path, lineno)
        if err is not None:
            bad.append(err)
            continue
        rows.append((record["reviewerID"], record["asin"], record["unixReviewTime"], lineno))
    frame = pd.DataFrame(rows, columns=["reviewer_id", "asin", "timestamp", "line"])
    return frame.astype({"timestamp": "int64", "line": "int64"}), bad


def _parse_meta_record(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return json.loads(text)


def _clean_categories(value: Any) -> list[str] | None:
    if not isinstance(value, list):
        return None
    paths = []
    for path in value:
        if not isinstance(path, list) or not all(isinstance(c, str) for c in path):
            return None
        paths.append(" > ".join(html.unescape(c) for c in path))
    return paths


def parse_meta(path: Path, keep_asins: set[str] | None = None) -> tuple[pd.DataFrame, list[BadLine]]:
    """Read a ``meta_<Category>.json.gz`` file (Python dict literals or JSON lines).

    Only items in ``keep_asins`` are kept when it is given (the official file covers far more items
    than the 5-core set). Titles, brands and categories are HTML-unescaped.

    Returns:
        A frame with ``asin, title, brand, categories`` (``categories`` a list of "a > b > c" paths;
        missing values are ``None``) and the list of rejected lines.
    """
    rows: list[dict[str, Any]] = []
    bad: list[BadLine] = []
    for lineno, text in decoded_lines(path, bad):
        try:
            record = _parse_meta_record(text)
        except (json.JSONDecodeError, ValueError) as exc:
            bad.append(BadLine(str(path), lineno, "<line>", f"neither a Python dict literal nor JSON: {exc}"))
            continue
        if not isinstance(record, dict):
            bad.append(BadLine(str(path), lineno, "<line>", f"expected a dict, got {type(record).__name__}"))
            continue
        asin = record.get("asin")
        if not isinstance(asin, str) or not asin:
            bad.append(BadLine(str(path), lineno, "asin", f"missing or not a string: {asin!r}"))
            continue
        if keep_asins is not None and asin not in keep_asins:
            continue
        row: dict[str, Any] = {"asin": asin}
        for field in ("title", "brand"):
            value = record.get(field)
            if value is not None and not isinstance(value, str):
                bad.append(BadLine(str(path), lineno, field, f"expected a string, got {value!r}"))
                value = None
            row[field] = html.unescape(value).strip() or None if value else None
        categories = _clean_categories(record.get("categories"))
        if record.get("categories") is not None and categories is None:
            bad.append(BadLine(str(path), lineno, "categories", "expected a list of lists of strings"))
        row["categories"] = categories
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["asin", "title", "brand", "categories"])
    return frame, bad


def check_bad_lines(bad: list[BadLine], max_bad_lines: int) -> None:
    """Fail with a message listing the first bad lines when there are more than allowed."""
    if len(bad) > max_bad_lines:
        raise RawDataError(bad, max_bad_lines)
