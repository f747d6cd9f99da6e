"""A small TIGER-style RQ-VAE quantizer (the learned baseline of the paper's quantizer comparison).

MLP encoder -> ``L`` residual codebooks of ``K`` entries (straight-through estimator, commitment loss,
codebooks initialised by k-means on the first batch) -> MLP decoder trained with reconstruction MSE.
Colliding items get an extra disambiguation level, as in TIGER and as the paper describes (4.6).
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from torch import nn
from torch.nn import functional as F

from unger.quantize.common import (
    QuantizationResult,
    check_codebook_size,
    item_matrix,
    residual_result,
)
from unger.utils import seed_everything

LogMetric = Callable[[str, float, int], None]


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class RQVAE(nn.Module):
    """Encoder, ``num_levels`` residual codebooks and decoder."""

    def __init__(
        self, input_dim: int, hidden_dim: int, latent_dim: int, K: int, num_levels: int, beta: float
    ):
        super().__init__()
        self.encoder = _mlp([input_dim, hidden_dim, latent_dim])
        self.decoder = _mlp([latent_dim, hidden_dim, input_dim])
        self.codebooks = nn.ParameterList(
            [nn.Parameter(torch.randn(K, latent_dim) * 0.01) for _ in range(num_levels)]
        )
        self.beta = beta
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def init_codebooks(self, x: torch.Tensor, seed: int) -> None:
        """k-means on the encoded batch, level by level on the residuals, so no codeword starts dead."""
        residual = self.encoder(x)
        for level, book in enumerate(self.codebooks):
            data = residual.detach().cpu().double().numpy()
            k = min(book.shape[0], len(data))
            with warnings.catch_warnings():
                # Duplicate rows only make sklearn warn about fewer distinct clusters; harmless here.
                warnings.simplefilter("ignore", ConvergenceWarning)
                centers = KMeans(n_clusters=k, n_init=1, random_state=seed + level).fit(data).cluster_centers_
            if k < book.shape[0]:
                # Fewer batch rows than codewords: fill the rest with jittered copies of batch rows.
                rng = np.random.default_rng(seed + level)
                extra = data[rng.integers(0, len(data), book.shape[0] - k)]
                centers = np.concatenate([centers, extra + 1e-3 * rng.standard_normal(extra.shape)])
            book.data.copy_(torch.as_tensor(centers, dtype=book.dtype, device=book.device))
            residual = residual - book[self._nearest(residual, book)]
        self.initialized.fill_(True)

    @staticmethod
    def _nearest(r: torch.Tensor, book: torch.Tensor) -> torch.Tensor:
        dist = (r**2).sum(1, keepdim=True) - 2 * r @ book.T + (book**2).sum(1)[None, :]
        return dist.argmin(dim=1)

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Residual quantization of ``z``: (quantized, codes, rq loss, per-level residual MSE)."""
        residual = z
        quantized = torch.zeros_like(z)
        codes, level_mse = [], []
        rq_loss = z.new_zeros(())
        for book in self.codebooks:
            idx = self._nearest(residual.detach(), book)
            q = book[idx]
            # Codebook term pulls codewords to the (frozen) residual; commitment term (beta) pulls the
            # encoder output towards the (frozen) codewords.
            codebook_loss = F.mse_loss(q, residual.detach())
            commitment_loss = F.mse_loss(residual, q.detach())
            rq_loss = rq_loss + codebook_loss + self.beta * commitment_loss
            quantized = quantized + q
            residual = residual - q.detach()
            codes.append(idx)
            level_mse.append((residual.detach() ** 2).sum(1).mean())
        return quantized, torch.stack(codes, dim=1), rq_loss, torch.stack(level_mse)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        z = self.encoder(x)
        quantized, codes, rq_loss, level_mse = self.quantize(z)
        # Straight-through estimator: the decoder sees the quantized latent, gradients flow to z.
        z_st = z + (quantized - z).detach()
        recon = F.mse_loss(self.decoder(z_st), x)
        return recon, rq_loss, codes, level_mse


def train_rqvae(
    embeddings: np.ndarray,
    K: int = 256,
    L: int = 3,
    latent_dim: int = 32,
    hidden_dim: int = 256,
    epochs: int = 50,
    lr: float = 1e-3,
    batch_size: int = 1024,
    beta: float = 0.25,
    seed: int = 2024,
    device: torch.device | str | None = None,
    log_metric: LogMetric | None = None,
) -> QuantizationResult:
    """Train an RQ-VAE on rows 1..N of ``embeddings`` and return unique codes for every item.

    Codes are the codebook indices of the trained model; items sharing all ``L`` indices get an extra
    disambiguation level (see :func:`unger.quantize.common.disambiguate`). ``extra`` holds the final
    reconstruction MSE, the per-level latent residual MSE and the number of used codewords per level.
    ``log_metric(name, value, epoch)`` receives ``rqvae/loss``, ``rqvae/recon_mse`` and ``rqvae/rq_loss``.
    """
    check_codebook_size(K)
    if L < 1:
        raise ValueError(f"L must be >= 1, got {L}")
    device = torch.device(device) if device is not None else torch.device("cpu")
    seed_everything(seed)
    x_np = item_matrix(embeddings)
    n_items = x_np.shape[0]
    x = torch.as_tensor(x_np, device=device)
    model = RQVAE(x.shape[1], hidden_dim, latent_dim, K, L, beta).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)

    history = []
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n_items, generator=generator).to(device)
        totals = np.zeros(3)
        for start in range(0, n_items, batch_size):
            batch = x[perm[start : start + batch_size]]
            if not bool(model.initialized):
                model.init_codebooks(batch, seed)
            recon, rq_loss, _, _ = model(batch)
            loss = recon + rq_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            totals += np.array([loss.item(), recon.item(), rq_loss.item()]) * len(batch)
        totals /= n_items
        history.append(totals)
        if log_metric is not None:
            for name, value in zip(("loss", "recon_mse", "rq_loss"), totals):
                log_metric(f"rqvae/{name}", float(value), epoch)

    model.eval()
    with torch.no_grad():
        recon_sum, codes_list, level_mse_sum = 0.0, [], torch.zeros(L, device=device)
        for start in range(0, n_items, batch_size):
            batch = x[start : start + batch_size]
            recon, _, codes, level_mse = model(batch)
            recon_sum += recon.item() * len(batch)
            level_mse_sum += level_mse * len(batch)
            codes_list.append(codes.cpu())
    item_codes = torch.cat(codes_list).numpy().astype(np.int64)
    used = [int(len(np.unique(item_codes[:, level]))) for level in range(L)]
    extra = {
        "reconstruction_mse": float(recon_sum / n_items),
        "latent_residual_mse": [float(v) for v in (level_mse_sum / n_items).cpu()],
        "used_codewords": used,
        "final_train_loss": float(history[-1][0]) if history else float("nan"),
    }
    return residual_result(item_codes, L, K, "rqvae", extra)
