"""The download code against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest

from unger.data.download import fetch_category
from unger.data.synthetic import write_synthetic_category


@pytest.fixture
def http_root(tmp_path: Path):
    root = tmp_path / "served"
    write_synthetic_category(root, category="Beauty")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_from_http(http_root, tmp_path: Path):
    root, url = http_root
    dest = tmp_path / "raw"
    paths = fetch_category("Beauty", dest, base_url=url)
    assert [p.name for p in paths] == ["reviews_Beauty_5.json.gz", "meta_Beauty.json.gz"]
    for path in paths:
        assert path.read_bytes() == (root / path.name).read_bytes()
        assert not path.with_name(path.name + ".part").exists()
    # A second call finds the files and downloads nothing (the server content changed).
    (root / "reviews_Beauty_5.json.gz").write_bytes(b"changed")
    fetch_category("Beauty", dest, base_url=url)
    assert paths[0].read_bytes() != b"changed"


def test_download_rejects_truncated_file(http_root, tmp_path: Path):
    root, url = http_root
    data = (root / "reviews_Beauty_5.json.gz").read_bytes()
    (root / "reviews_Beauty_5.json.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match="not a complete gzip file"):
        fetch_category("Beauty", tmp_path / "raw", base_url=url)
    assert not list((tmp_path / "raw").rglob("*.gz*"))


def test_missing_file_is_an_http_error(http_root, tmp_path: Path):
    _, url = http_root
    with pytest.raises(OSError):
        fetch_category("Toys_and_Games", tmp_path / "raw", base_url=url)


def test_local_source_is_linked_not_copied(tmp_path: Path):
    source = tmp_path / "shared"
    write_synthetic_category(source / "Sports", category="Sports_and_Outdoors")
    (source / "Sports" / "meta_Sports_and_Outdoors.json.gz").unlink()
    paths = fetch_category("Sports_and_Outdoors", tmp_path / "raw", source=source)
    assert len(paths) == 1 and paths[0].is_symlink()
    assert paths[0].parent.name == "Sports"
