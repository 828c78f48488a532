"""CLIP backbones from open_clip, with the packed attention split for LoRA.

A backbone is described by a *record*: the open_clip model name, the pretrained-weights tag and
the model configuration in full (including `quick_gelu`: OpenAI's weights were trained with
QuickGELU, and open_clip's plain `ViT-L-14` config uses nn.GELU, only warning about it).
Checkpoints store the record and the loader rebuilds the network from it alone, so a checkpoint
always runs the network it was trained as.

`ViT-L-14` (the paper's backbone) and any other open_clip architecture name come from
open_clip; `test-tiny` is a built-in random-init CLIP a few MB in size that needs no download
(tests and demos). torch and open_clip are imported only when a model is built, so the
manifest code can use the names here without loading them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import CheckpointError

if TYPE_CHECKING:
    import torch
    from torch import nn

TEST_TINY = "test-tiny"
DEFAULT_ARCH = "ViT-L-14"
DEFAULT_PRETRAINED = "openai"

# Patch size 32 gives a 7x7 token grid, the same layout as the 7x7 mosaic.
_TEST_TINY_CFG: dict[str, Any] = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=224, layers=2, width=64, head_width=16, patch_size=32),
    text_cfg=dict(context_length=77, vocab_size=49408, width=8, heads=2, layers=1),
    quick_gelu=True,
)
_TEST_TINY_SEED = 20251128


class BackboneError(CheckpointError):
    """The backbone could not be built or its weights could not be fetched."""


def _uses_quick_gelu(arch: str, pretrained: str | None) -> bool:
    """Whether the named pretrained weights were trained with QuickGELU (OpenAI's were)."""
    import open_clip

    if not pretrained:
        return False
    info = open_clip.get_pretrained_cfg(arch, pretrained) or {}
    return bool(info.get("quick_gelu", pretrained == "openai"))


def backbone_record(arch: str = DEFAULT_ARCH, pretrained: str | None = DEFAULT_PRETRAINED) -> dict[str, Any]:
    """The full description of a backbone, as stored in checkpoints."""
    if arch == TEST_TINY:
        config = copy.deepcopy(_TEST_TINY_CFG)
        pretrained = None
    else:
        import open_clip

        config = open_clip.get_model_config(arch)
        if config is None:
            raise BackboneError(f"cannot build backbone {arch!r}: open_clip has no such model")
        config = copy.deepcopy(config)
        if _uses_quick_gelu(arch, pretrained):
            config["quick_gelu"] = True
    config.setdefault("quick_gelu", False)
    return {"library": "open_clip", "model_name": arch, "pretrained": pretrained or None, "config": config}


def clip_from_record(record: dict[str, Any], load_pretrained: bool = True, on_meta: bool = False) -> nn.Module:
    """Builds the frozen CLIP model a record describes, in eval mode, with the vision attention
    split. With `load_pretrained` and a `pretrained` tag the weights are fetched by open_clip
    (after checking that open_clip's configuration is exactly the recorded one); otherwise
    the weights are random (seeded for test-tiny) and the caller loads its own. `on_meta`
    (without `load_pretrained`) builds it on the meta device: no memory and no random init
    (seconds for ViT-L/14), for a caller that then gives every tensor its value.
    """
    import open_clip
    import torch

    from .attention import split_all_attention

    name, pretrained, config = record["model_name"], record.get("pretrained"), record["config"]
    model: nn.Module  # open_clip has no type information
    try:
        if load_pretrained and pretrained:
            expected = backbone_record(name, pretrained)["config"]
            if expected != config:
                raise BackboneError(f"this open_clip's {name} with {pretrained!r} weights is not the configuration the "
                                    f"checkpoint records; update open_clip_torch or bundle the base weights")
            model = open_clip.create_model(name, pretrained=pretrained, force_quick_gelu=bool(config["quick_gelu"]))
        else:
            config = copy.deepcopy(config)
            custom_text = bool(config.pop("custom_text", False)) or "hf_model_name" in config.get("text_cfg", {})
            model_class = open_clip.model.CustomTextCLIP if custom_text else open_clip.model.CLIP
            if on_meta:
                with torch.device("meta"):
                    model = model_class(**config)
            else:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(_TEST_TINY_SEED)  # random weights, the same every time
                    model = model_class(**config)
    except BackboneError:
        raise
    except (TypeError, ValueError, KeyError, AssertionError) as exc:
        raise BackboneError(f"the recorded {name} backbone configuration cannot be rebuilt by this open_clip: "
                            f"{type(exc).__name__}: {exc}") from None
    except RuntimeError as exc:  # open_clip: unknown tag / unknown model
        raise BackboneError(f"cannot build backbone {name!r} ({pretrained}): {exc}") from exc
    except OSError as exc:  # download failed
        raise BackboneError(f"cannot fetch the {name} '{pretrained}' weights (no network or no cache?): {exc}") from exc
    split_all_attention(model.get_submodule("visual"))
    model.eval().requires_grad_(False)
    return model


def build_clip(arch: str = DEFAULT_ARCH, pretrained: str | None = DEFAULT_PRETRAINED) -> nn.Module:
    """A frozen CLIP model by name; `pretrained=None` gives random weights (benchmarks)."""
    return clip_from_record(backbone_record(arch, pretrained))


def embed_dim_of(clip_model: nn.Module) -> int:
    return int(getattr(clip_model.visual, "output_dim"))  # noqa: B009 - an open_clip attribute torch does not type


def tokenizer_for(arch: str) -> Callable[..., torch.Tensor]:
    """The text tokenizer matching `arch` (open_clip ships its BPE vocabulary, no download):
    texts in, a (N, context_length) tensor of token ids out."""
    import open_clip

    tokenizer: Callable[..., torch.Tensor] = open_clip.get_tokenizer("ViT-B-32" if arch == TEST_TINY else arch)
    return tokenizer
