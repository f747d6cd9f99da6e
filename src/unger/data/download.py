"""Make the raw Amazon 2014 files available: link a local copy or download the official files.

Usage: ``python -m unger.data.download --category Beauty --dest data/01_raw/amazon2014``
(``--source DIR`` links an existing copy instead; ``--base-url`` points at a mirror).
"""

from __future__ import annotations

import argparse
import gzip
import logging
import shutil
import urllib.request
from pathlib import Path

OFFICIAL_BASE_URL = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles"
# The shared copy and earlier releases file Sports under a short folder name.
FOLDER_NAMES = {"Sports_and_Outdoors": "Sports", "Toys_and_Games": "Toys"}

log = logging.getLogger(__name__)


def raw_file_names(category: str, with_meta: bool = True) -> list[str]:
    """The official file names of a category."""
    names = [f"reviews_{category}_5.json.gz"]
    return names + [f"meta_{category}.json.gz"] if with_meta else names


def _verify_gzip(path: Path) -> None:
    with gzip.open(path, "rb") as fh:
        while fh.read(1 << 20):
            pass


def download_file(url: str, dest: Path, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` through a ``.part`` file, checking the gzip stream is whole."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    log.info("downloading %s -> %s", url, dest)
    with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as fh:
        shutil.copyfileobj(response, fh, 1 << 20)
    try:
        _verify_gzip(part)
    except (OSError, EOFError) as exc:
        part.unlink()
        raise OSError(f"downloaded {url} is not a complete gzip file: {exc}") from exc
    part.replace(dest)
    return dest


def fetch_category(
    category: str,
    dest: Path,
    base_url: str = OFFICIAL_BASE_URL,
    source: Path | None = None,
    with_meta: bool = True,
) -> list[Path]:
    """Ensure the raw files of ``category`` exist under ``dest/<folder>/``.

    Files already there are kept. With ``source`` (a local copy such as ``../shared/data/amazon2014``)
    files are symlinked rather than copied; otherwise they are downloaded from ``base_url``.
    """
    folder = dest / FOLDER_NAMES.get(category, category)
    paths = []
    for name in raw_file_names(category, with_meta):
        target = folder / name
        if target.exists():
            paths.append(target)
            continue
        local = next(iter(sorted(source.rglob(name))), None) if source is not None else None
        if local is not None:
            folder.mkdir(parents=True, exist_ok=True)
            target.symlink_to(local.resolve())
            log.info("linked %s -> %s", target, local)
        elif source is not None and name.startswith("meta_"):
            log.warning("%s has no %s: item text will be unavailable", source, name)
            continue
        else:
            download_file(f"{base_url.rstrip('/')}/{name}", target)
        paths.append(target)
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--category", default="Beauty")
    parser.add_argument("--dest", type=Path, default=Path("data/01_raw/amazon2014"))
    parser.add_argument("--source", type=Path, default=None, help="local copy to link instead of downloading")
    parser.add_argument("--base-url", default=OFFICIAL_BASE_URL)
    parser.add_argument("--no-meta", action="store_true", help="reviews only (no item text)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    source = args.source if args.source is not None and args.source.is_dir() else None
    for path in fetch_category(args.category, args.dest, args.base_url, source, not args.no_meta):
        print(path)


if __name__ == "__main__":
    main()
