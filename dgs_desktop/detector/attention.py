"""An attention module with separate q/k/v/out projections, equivalent to nn.MultiheadAttention.

open_clip packs q, k and v into one `in_proj_weight`; peft cannot attach a proper LoRA to that
(its MHA wrapper drifts the frozen weights, and LoRA on `out_proj` silently gets no gradient).
`SplitAttention` holds four plain `nn.Linear` layers, so peft can target `q_proj`, `k_proj`,
`v_proj` like in any transformer, and it calls `F.scaled_dot_product_attention`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SplitAttention(nn.Module):
    """Drop-in for a batch-first, self-/cross-attention `nn.MultiheadAttention` call."""

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    @classmethod
    def from_multihead(cls, mha: nn.MultiheadAttention) -> SplitAttention:
        if not mha._qkv_same_embed_dim or not mha.batch_first:
            raise ValueError("only batch-first MultiheadAttention with packed q/k/v is supported")
        has_bias = mha.in_proj_bias is not None
        split = cls(mha.embed_dim, mha.num_heads, bias=has_bias)
        split.to(device=mha.in_proj_weight.device, dtype=mha.in_proj_weight.dtype)
        with torch.no_grad():
            for proj, weight in zip((split.q_proj, split.k_proj, split.v_proj), mha.in_proj_weight.chunk(3)):
                proj.weight.copy_(weight)
            if has_bias:
                for proj, bias in zip((split.q_proj, split.k_proj, split.v_proj), mha.in_proj_bias.chunk(3)):
                    proj.bias.copy_(bias)
                split.out_proj.bias.copy_(mha.out_proj.bias)
            split.out_proj.weight.copy_(mha.out_proj.weight)
        return split

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, -1).transpose(1, 2)

    def forward(self, query: torch.Tensor, key: torch.Tensor | None = None, value: torch.Tensor | None = None,
                need_weights: bool = False, attn_mask: torch.Tensor | None = None,
                key_padding_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        """Same call signature and (output, None) return as nn.MultiheadAttention(batch_first=True)."""
        if need_weights or key_padding_mask is not None:
            raise NotImplementedError("SplitAttention supports need_weights=False and no padding mask")
        key = query if key is None else key
        value = key if value is None else value
        q = self._heads(self.q_proj(query))
        k = self._heads(self.k_proj(key))
        v = self._heads(self.v_proj(value))
        if attn_mask is not None and attn_mask.dtype != torch.bool:
            attn_mask = attn_mask.to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        batch, _, length, _ = out.shape
        out = out.transpose(1, 2).reshape(batch, length, self.embed_dim)
        return self.out_proj(out), None


def split_all_attention(module: nn.Module) -> int:
    """Replace every nn.MultiheadAttention under `module` in place; returns how many were replaced."""
    replaced = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.MultiheadAttention):
            setattr(module, name, SplitAttention.from_multihead(child))
            replaced += 1
        else:
            replaced += split_all_attention(child)
    return replaced
