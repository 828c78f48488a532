"""CLIP backbones from open_clip, with the packed attention split for LoRA.

`ViT-L-14` (the paper's backbone) and any other open_clip architecture name come from
open_clip; `test-tiny` is a built-in random-init CLIP a few MB in size that needs no download
(tests and demos).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import CheckpointError
from .attention import split_all_attention

TEST_TINY = "test-tiny"
DEFAULT_ARCH = "ViT-L-14"
DEFAULT_PRETRAINED = "openai"

# Patch size 32 gives a 7x7 token grid, the same layout as the 7x7 mosaic.
_TEST_TINY_CFG = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=224, layers=2, width=64, head_width=16, patch_size=32),
    text_cfg=dict(context_length=77, vocab_size=49408, width=8, heads=2, layers=1),
    quick_gelu=True,
)
_TEST_TINY_SEED = 20251128


class BackboneError(CheckpointError):
    """The backbone could not be built or its weights could not be fetched."""


def build_clip(arch: str = DEFAULT_ARCH, pretrained: str | None = DEFAULT_PRETRAINED) -> nn.Module:
    """Returns a frozen open_clip CLIP model in eval mode with the vision attention split.

    `pretrained=None` gives random weights (benchmarks). `test-tiny` always has the same
    deterministic random weights for a given torch version.
    """
    import open_clip

    if arch == TEST_TINY:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_TEST_TINY_SEED)
            model = open_clip.model.CLIP(**_TEST_TINY_CFG)
    else:
        try:
            # OpenAI's weights were trained with QuickGELU; open_clip's plain `ViT-L-14` config
            # uses nn.GELU and only warns about the mismatch.
            model = open_clip.create_model(arch, pretrained=pretrained or None,
                                           force_quick_gelu=pretrained == "openai")
        except RuntimeError as exc:  # open_clip: unknown tag / unknown model
            raise BackboneError(f"cannot build backbone {arch!r} ({pretrained}): {exc}") from exc
        except OSError as exc:  # download failed
            raise BackboneError(
                f"cannot fetch the {arch} '{pretrained}' weights (no network or no cache?): {exc}"
            ) from exc
    split_all_attention(model.visual)
    model.eval().requires_grad_(False)
    return model


def embed_dim_of(clip_model: nn.Module) -> int:
    return int(clip_model.visual.output_dim)


def tokenizer_for(arch: str):
    """The text tokenizer matching `arch` (open_clip ships its BPE vocabulary, no download)."""
    import open_clip

    return open_clip.get_tokenizer("ViT-B-32" if arch == TEST_TINY else arch)
