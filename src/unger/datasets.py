"""Custom Kedro datasets: a raw-data folder handle, numpy arrays and torch state dicts."""

from __future__ import annotations

import io
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
import numpy as np
from kedro.io import AbstractDataset, AbstractVersionedDataset
from kedro.io.core import Version, get_filepath_str, get_protocol_and_path


class RawDirectoryDataset(AbstractDataset[None, Path]):
    """A read-only folder of raw files; loading returns its path so nodes can stream large files
    line by line (and report line numbers) instead of loading them whole."""

    def __init__(self, path: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> Path:
        if not self._path.is_dir():
            raise FileNotFoundError(
                f"raw data folder {self._path} does not exist: run `make data` "
                "(links ../shared/data/amazon2014 or downloads the official files)"
            )
        return self._path

    def save(self, data: None) -> None:
        raise NotImplementedError("RawDirectoryDataset is read-only")

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}


class _VersionedFileDataset(AbstractVersionedDataset):
    """Shared fsspec plumbing for single-file, optionally versioned datasets."""

    def __init__(self, filepath: str, version: Version | None = None, metadata: dict[str, Any] | None = None):
        protocol, path = get_protocol_and_path(filepath, version)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol)
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    def _read_bytes(self) -> bytes:
        path = get_filepath_str(self._get_load_path(), self._protocol)
        with self._fs.open(path, "rb") as fh:
            return fh.read()

    def _write_bytes(self, payload: bytes) -> None:
        path = get_filepath_str(self._get_save_path(), self._protocol)
        self._fs.makedirs(str(PurePosixPath(path).parent), exist_ok=True)
        with self._fs.open(path, "wb") as fh:
            fh.write(payload)

    def _exists(self) -> bool:
        try:
            path = get_filepath_str(self._get_load_path(), self._protocol)
        except Exception:  # noqa: BLE001 - no version saved yet
            return False
        return self._fs.exists(path)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "version": self._version}


class NumpyDataset(_VersionedFileDataset):
    """A numpy array in ``.npy`` format (no pickles)."""

    def load(self) -> np.ndarray:
        return np.load(io.BytesIO(self._read_bytes()), allow_pickle=False)

    def save(self, data: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(data), allow_pickle=False)
        self._write_bytes(buffer.getvalue())


class TorchStateDataset(_VersionedFileDataset):
    """A checkpoint dict of tensors and plain values, loaded with ``weights_only=True``."""

    def load(self) -> dict[str, Any]:
        import torch

        return torch.load(io.BytesIO(self._read_bytes()), map_location="cpu", weights_only=True)

    def save(self, data: dict[str, Any]) -> None:
        import torch

        buffer = io.BytesIO()
        torch.save(data, buffer)
        self._write_bytes(buffer.getvalue())


class OptionalJSONDataset(AbstractDataset[dict, "dict | None"]):
    """A JSON file that may not exist yet: loading a missing file gives ``None``.

    The study report reads one record per run through these, so it can say which runs are missing
    instead of failing (a study is often run a few namespaces at a time).
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None):
        self._path = Path(filepath)
        self.metadata = metadata

    def load(self) -> dict | None:
        import json

        if not self._path.exists():
            return None
        try:
            return json.loads(self._path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{self._path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None

    def save(self, data: dict) -> None:
        import json

        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(self._path.suffix + ".part")
        tmp.write_text(json.dumps(data, indent=2, default=str))
        tmp.replace(self._path)

    def _exists(self) -> bool:
        return self._path.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._path)}
