"""A factorised word embedding: V × r then r × H (ALBERT's factorised embedding
parameterisation, Lan et al. 2020, section 3.1), started from the truncated SVD of a
trained V × H embedding.

``E = U Σ Vᵀ`` (V × H); the rank-r factors are ``A = U_r Σ_r`` (V × r, an embedding
table) and ``B = V_rᵀ`` (r × H, a linear map without bias), so that ``A[i] B`` is the
best rank-r approximation of row i (Eckart–Young). Parameters: r·(V + H) instead of
V·H (the embedded MiniLM at r = 64: 1.98 M instead of 11.72 M).

Module replacing trains it as one more successor module (``replace --embedding-rank``);
a successor that holds one is saved with ``theseus_successor.json`` (its rank) and read
back by theseus's loader, not by a stock class.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from theseus_cli.errors import ConfigError


class FactorizedEmbedding(nn.Module):
    """``ids (B, L) -> (B, L, H)``: ``table(ids) @ project``, a V × r table and an r × H map.

    Attributes:
        table: ``nn.Embedding(V, r)`` (its ``padding_idx`` that of the original).
        project: ``nn.Linear(r, H, bias=False)``.
    """

    def __init__(self, num_embeddings: int, rank: int, embedding_dim: int,
                 padding_idx: int | None = None):
        super().__init__()
        self.table = nn.Embedding(num_embeddings, rank, padding_idx=padding_idx)
        self.project = nn.Linear(rank, embedding_dim, bias=False)

    @property
    def rank(self) -> int:
        return self.table.embedding_dim

    @property
    def num_embeddings(self) -> int:
        return self.table.num_embeddings

    @property
    def embedding_dim(self) -> int:
        return self.project.out_features

    @property
    def padding_idx(self) -> int | None:
        return self.table.padding_idx

    @property
    def weight(self) -> torch.Tensor:
        """The V × H product (for code that reads ``embedding.weight``; not a parameter)."""
        return self.project(self.table.weight)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.project(self.table(input_ids))  # (B, L) -> (B, L, r) -> (B, L, H)

    def spec(self) -> dict[str, Any]:
        """What rebuilds its shapes: ``{"type": "factorized", "rank": r}``."""
        return {"type": "factorized", "rank": self.rank}


def embedding_rank(weight: torch.Tensor, rank: int | None = None,
                   energy: float | None = None) -> int:
    """The rank r of the factorisation of a (V, H) ``weight``: ``rank``, or the smallest r
    whose singular values hold ``energy`` of Σ σ² (ROSITA's rule).

    Raises:
        ConfigError: neither or both given, a rank outside 1 .. H − 1 (a rank of H or more
            saves nothing), or an energy outside (0, 1).
    """
    hidden = int(weight.shape[1])
    if (rank is None) == (energy is None):
        raise ConfigError("a factorised embedding needs exactly one of embedding_rank and "
                          "embedding_energy")
    if rank is not None:
        if not 1 <= rank < hidden:
            raise ConfigError(f"embedding rank {rank} must lie between 1 and {hidden - 1} (the "
                              f"hidden size is {hidden}: a rank of {hidden} or more saves "
                              "nothing)")
        return int(rank)
    if not 0.0 < energy < 1.0:
        raise ConfigError(f"embedding energy {energy} must lie in (0, 1)")
    s = torch.linalg.svdvals(weight.detach().float())  # (min(V, H),)
    share = torch.cumsum(s ** 2, 0) / torch.sum(s ** 2)
    return min(int(torch.searchsorted(share, torch.tensor(energy)).item()) + 1, hidden - 1)


def factorize(embedding: nn.Embedding, rank: int) -> FactorizedEmbedding:
    """A :class:`FactorizedEmbedding` of rank ``rank`` from the truncated SVD of
    ``embedding``'s (V, H) weight: ``A = U_r Σ_r`` (V, r), ``B = V_rᵀ`` (r, H); on the
    embedding's device and dtype."""
    w = embedding.weight.detach()
    u, s, vh = torch.linalg.svd(w.float(), full_matrices=False)  # (V, k), (k,), (k, H)
    out = FactorizedEmbedding(w.shape[0], rank, w.shape[1], embedding.padding_idx)
    with torch.no_grad():
        out.table.weight.copy_((u[:, :rank] * s[:rank]).to(w.dtype))  # (V, r)
        out.project.weight.copy_(vh[:rank].T.to(w.dtype))  # nn.Linear holds (H, r) = B^T
    return out.to(device=w.device, dtype=w.dtype)


def restructure_embedding(model: nn.Module, spec: dict[str, Any]) -> None:
    """Give ``model`` (fresh weights) the input embedding ``spec`` describes (a
    :meth:`FactorizedEmbedding.spec`), so that saved weights load into it.

    Raises:
        ConfigError: an unknown embedding type.
    """
    if spec.get("type") != "factorized":
        raise ConfigError(f"unknown embedding structure {spec!r}; accepted: factorized")
    old = model.get_input_embeddings()
    ref = old.weight
    new = FactorizedEmbedding(old.num_embeddings, int(spec["rank"]), old.embedding_dim,
                              old.padding_idx)
    model.set_input_embeddings(new.to(device=ref.device, dtype=ref.dtype))


def relative_error(embedding: nn.Embedding, factorized: FactorizedEmbedding) -> float:
    """‖E − A B‖_F / ‖E‖_F: how much of the embedding the factors miss (0: exact)."""
    with torch.no_grad():
        e = embedding.weight.float()
        return float(torch.linalg.norm(e - factorized.weight.float()) / torch.linalg.norm(e))


def parameters_saved(vocab: int, hidden: int, rank: int) -> int:
    """V·H − r·(V + H): parameters a rank-r factorisation saves."""
    return vocab * hidden - rank * (vocab + hidden)

