"""The scoring network written against torch alone: CLIP's vision tower and the linear head.

Importing open_clip (torchvision, torch._dynamo, transformers) and peft costs about twice
`import torch`, which is most of a one-image scan. Scoring needs neither: this module holds
the same computation as open_clip's `VisionTransformer` (with the attention split as in
`attention.py`) under the same parameter names, so the bundled weight file loads into it key
for key, and the LoRA update is merged into q/k/v once, at load (`scorer.py`). Training and
the teacher keep the open_clip + peft model (`model.py`), which is also the reference these
scores are tested against.

`vision_spec` reads the backbone record (torch-free). A configuration this module does not
compute exactly (timm towers, attentional pooling, custom blocks, ...) raises
`UnsupportedBackbone`, and the loader scores with the reference model instead.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .attention import SplitAttention


class UnsupportedBackbone(ValueError):
    """The recorded backbone uses an option the torch-only network does not implement."""


@dataclass(frozen=True)
class VisionSpec:
    """What the vision tower computes, read from an open_clip configuration."""

    image_size: int
    patch_size: int
    width: int
    layers: int
    heads: int
    mlp_width: int
    output_dim: int
    quick_gelu: bool
    norm_eps: float = 1e-5
    layer_scale: bool = False
    ln_pre: bool = True
    pool: str = "tok"  # "tok": the class token; "avg": the mean of the patch tokens
    ln_after_pool: bool = False

    @property
    def tokens(self) -> int:
        return (self.image_size // self.patch_size) ** 2 + 1


# open_clip's vision options and the values this module computes exactly; a key that is not
# here (a newer open_clip's option) makes the record unsupported rather than silently ignored.
_DEFAULT_ONLY = {"attentional_pool": False, "output_tokens": False, "act_kwargs": None,
                 "qk_norm": False, "scaled_cosine_attn": False, "scale_heads": False, "scale_attn_inner": False,
                 "scale_attn": False, "scale_fc": False, "timm_model_name": None}
_IGNORED = {"patch_dropout",  # identity in eval mode
            "attn_pooler_queries", "attn_pooler_heads",  # only with attentional_pool
            "timm_model_pretrained", "timm_pool", "timm_proj", "timm_proj_bias", "timm_drop", "timm_drop_path"}
_READ = {"block_type", "layers", "width", "head_width", "mlp_ratio", "patch_size", "image_size", "ls_init_value", "no_ln_pre",
         "pos_embed_type", "final_ln_after_pool", "pool_type", "norm_kwargs"}


def vision_spec(record: dict[str, Any]) -> VisionSpec:
    """The torch-only network for a backbone record, or `UnsupportedBackbone` saying why not."""
    config = record["config"]
    cfg = dict(config.get("vision_cfg") or {})
    unknown = sorted(set(cfg) - set(_DEFAULT_ONLY) - _IGNORED - _READ)
    if unknown:
        raise UnsupportedBackbone(f"vision option {unknown[0]!r}")
    for key, default in _DEFAULT_ONLY.items():
        if not _is_default(cfg.get(key, default), default):
            raise UnsupportedBackbone(f"vision option {key}={cfg[key]!r}")
    if config.get("cast_dtype") is not None:
        raise UnsupportedBackbone(f"cast_dtype={config['cast_dtype']!r}")
    if cfg.get("block_type") not in (None, "default"):
        raise UnsupportedBackbone(f"block_type={cfg['block_type']!r}")
    layers, image_size = cfg.get("layers", 12), cfg.get("image_size", 224)
    if not _is_int(layers) or not _is_int(image_size):
        raise UnsupportedBackbone("a ResNet tower or a non-square image size")
    pool = cfg.get("pool_type", "tok")
    if pool not in ("tok", "avg"):
        raise UnsupportedBackbone(f"pool_type={pool!r}")
    if cfg.get("pos_embed_type", "learnable") not in ("learnable", "sin_cos_2d"):  # both a stored tensor
        raise UnsupportedBackbone(f"pos_embed_type={cfg['pos_embed_type']!r}")
    norm_kwargs = cfg.get("norm_kwargs") or {}
    if set(norm_kwargs) - {"eps"}:
        raise UnsupportedBackbone(f"norm_kwargs {sorted(norm_kwargs)}")
    width, head_width = cfg.get("width", 768), cfg.get("head_width", 64)
    return VisionSpec(image_size=image_size, patch_size=cfg.get("patch_size", 16), width=width, layers=layers,
                      heads=width // head_width, mlp_width=int(width * cfg.get("mlp_ratio", 4.0)),
                      output_dim=config["embed_dim"], quick_gelu=bool(config.get("quick_gelu", False)),
                      norm_eps=float(norm_kwargs.get("eps", 1e-5)), layer_scale=cfg.get("ls_init_value") is not None,
                      ln_pre=not cfg.get("no_ln_pre", False), pool=pool,
                      ln_after_pool=bool(cfg.get("final_ln_after_pool", False)))


def _is_default(value: object, default: object) -> bool:
    if default is None:
        return not value  # None, {} or "": open_clip treats them alike
    return type(value) is type(default) and value == default


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class LayerNorm(nn.LayerNorm):
    """open_clip's LayerNorm: the output keeps the input's dtype (matters under autocast)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps).to(x.dtype)


class QuickGELU(nn.Module):
    """x·sigmoid(1.702x), the activation OpenAI's CLIP weights were trained with."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class LayerScale(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.empty(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    """A pre-norm residual block: attention, then the MLP."""

    def __init__(self, spec: VisionSpec):
        super().__init__()
        self.ln_1 = LayerNorm(spec.width, eps=spec.norm_eps)
        self.attn = SplitAttention(spec.width, spec.heads)
        self.ls_1 = LayerScale(spec.width) if spec.layer_scale else nn.Identity()
        self.ln_2 = LayerNorm(spec.width, eps=spec.norm_eps)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(spec.width, spec.mlp_width)),
            ("gelu", QuickGELU() if spec.quick_gelu else nn.GELU()),
            ("c_proj", nn.Linear(spec.mlp_width, spec.width)),
        ]))
        self.ls_2 = LayerScale(spec.width) if spec.layer_scale else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls_1(self.attn(self.ln_1(x))[0])
        out: torch.Tensor = x + self.ls_2(self.mlp(self.ln_2(x)))  # a Module call is typed Any
        return out


class Blocks(nn.Module):
    """Holds the blocks as `resblocks`, open_clip's name, so the weight names match."""

    def __init__(self, spec: VisionSpec):
        super().__init__()
        self.resblocks = nn.ModuleList(Block(spec) for _ in range(spec.layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x)
        return x


class VisionTower(nn.Module):
    """Image (B, 3, H, W) -> the unnormalised projected embedding (B, output_dim)."""

    def __init__(self, spec: VisionSpec):
        super().__init__()
        self.spec = spec
        self.conv1 = nn.Conv2d(3, spec.width, kernel_size=spec.patch_size, stride=spec.patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.empty(spec.width))
        self.positional_embedding = nn.Parameter(torch.empty(spec.tokens, spec.width))
        self.ln_pre = LayerNorm(spec.width, eps=spec.norm_eps) if spec.ln_pre else nn.Identity()
        self.transformer = Blocks(spec)
        self.ln_post = LayerNorm(spec.width, eps=spec.norm_eps)
        self.proj = nn.Parameter(torch.empty(spec.width, spec.output_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.conv1(images).flatten(2).transpose(1, 2)  # (B, grid², width)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x))
        pooled: torch.Tensor = self.ln_post(self._pool(x)) if self.spec.ln_after_pool else self._pool(self.ln_post(x))
        return pooled @ self.proj

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 1:].mean(dim=1) if self.spec.pool == "avg" else x[:, 0]


class ScoringDetector(nn.Module):
    """The vision tower with LoRA merged in, and h_img: images -> logits (B,)."""

    def __init__(self, spec: VisionSpec):
        super().__init__()
        self.visual = VisionTower(spec)
        self.head = nn.Linear(spec.output_dim, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.visual(images))
        return logits.squeeze(-1)
