"""Loads the network that scores files: `vit.ScoringDetector`, with the LoRA update merged in.

The window, `dgs-desktop scan`, `calibrate` and `evaluate` all load through `load_scorer`, so a
file gets the same score whichever of them scores it. With the base weights bundled (every
real-size checkpoint we write, and the authors' import) nothing but torch and safetensors is
imported: the network is built on the meta device and each tensor of the verified files is
placed into it as it is read. Base weights that open_clip fetches by name are loaded through
the reference model (`checkpoint.load_detector`) and then moved into the same network. A
backbone the torch-only network does not implement is scored by the reference model itself.

LoRA is merged as W' = W + s·B·A with the checkpoint's scale s (alpha/sqrt(r) or alpha/r, as
recorded); in eval mode, without dropout, W'·x equals peft's W·x + s·B·(A·x) up to rounding.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import torch
from torch import nn

from ..errors import CheckpointError, one_line
from .checkpoint import (
    BUILDING,
    LOADING,
    TensorFile,
    backbone_of,
    check_finite_head,
    check_lora_keys,
    load_detector,
    load_head_tensors,
    load_tensors,
    lora_settings_of,
    no_stages,
)
from .manifest import BASE_FILE, LORA_FILE, Checkpoint, LoraSettings
from .model import DGSDetector, check_same_names
from .vit import ScoringDetector, UnsupportedBackbone, VisionSpec, vision_spec

log = logging.getLogger(__name__)


def lora_key(block: int, target: str, part: str) -> str:
    """The name peft saves a LoRA factor under (`part` is "A" or "B")."""
    return f"base_model.model.transformer.resblocks.{block}.attn.{target}.lora_{part}.weight"


def merged_weight(weight: torch.Tensor, lora_a: torch.Tensor, lora_b: torch.Tensor, scale: float) -> torch.Tensor:
    """W + scale·B·A, in float32."""
    return weight.float() + (lora_b.float() @ lora_a.float()) * scale


def load_scorer(checkpoint: Checkpoint, device: str | torch.device = "cpu", *,
                on_stage: Callable[[str, float], None] | None = None) -> nn.Module:
    """The detector that scores a verified checkpoint (logits of shape (B,)), in eval mode.
    `on_stage` hears `BUILDING` and `LOADING` with the fraction done, as `load_detector`."""
    on_stage = on_stage or no_stages
    settings = lora_settings_of(checkpoint)
    try:
        spec = vision_spec(backbone_of(checkpoint))
    except (UnsupportedBackbone, KeyError, TypeError) as why:
        log.info("scoring with the open_clip model: the torch-only network does not implement %s", why)
        return load_detector(checkpoint, device, on_stage=on_stage)
    base = checkpoint.manifest["base_weights"]
    try:
        if not base.get("bundled"):
            return _from_reference(load_detector(checkpoint, "cpu", on_stage=on_stage), spec, settings, device)
        on_stage(BUILDING, 0.0)
        with torch.device("meta"):
            scorer = ScoringDetector(spec)  # no memory, no random init: every tensor comes from the files
        on_stage(BUILDING, 1.0)
        on_stage(LOADING, 0.0)
        weights = TensorFile(checkpoint, base.get("file") or BASE_FILE)
        place_base(scorer, weights.keys(), weights.tensor, device, lambda done: on_stage(LOADING, 0.9 * done))
        merge_lora(scorer, spec, settings, load_tensors(checkpoint, LORA_FILE))
        place_head(scorer, load_head_tensors(checkpoint), device)
    except CheckpointError:
        raise
    except (ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint weights do not fit the {checkpoint.architecture} architecture: "
                              f"{one_line(exc)}") from None
    check_finite_head(scorer.head)
    on_stage(LOADING, 1.0)
    return scorer.eval().requires_grad_(False)


def _from_reference(reference: DGSDetector, spec: VisionSpec, settings: LoraSettings,
                    device: str | torch.device) -> ScoringDetector:
    """The scoring network with the weights of a loaded open_clip + peft detector."""
    base = reference.base_visual_state_dict()
    with torch.device("meta"):
        scorer = ScoringDetector(spec)
    place_base(scorer, list(base), base.__getitem__, device, no_progress)
    merge_lora(scorer, spec, settings, reference.lora_state_dict())
    place_head(scorer, {"h_img.weight": reference.head.weight.detach(), "h_img.bias": reference.head.bias.detach()},
               device)
    return scorer.eval().requires_grad_(False)


def no_progress(fraction: float) -> None:
    pass


def place(module: nn.Module, name: str, value: torch.Tensor, device: str | torch.device) -> None:
    """Makes `value` (float32, on `device`) the parameter `name` of `module`, whose shape it must have."""
    owner_name, _, leaf = name.rpartition(".")
    owner = module.get_submodule(owner_name)
    expected = getattr(owner, leaf).shape
    if value.shape != expected:
        raise ValueError(f"weight {name} has shape {tuple(value.shape)}, expected {tuple(expected)}")
    setattr(owner, leaf, nn.Parameter(value.to(device=device, dtype=torch.float32), requires_grad=False))


def place_base(scorer: ScoringDetector, keys: Iterable[str], read: Callable[[str], torch.Tensor],
               device: str | torch.device, progress: Callable[[float], None]) -> None:
    """Places every vision weight, one tensor at a time; the names must be exactly the network's."""
    keys = list(keys)
    check_same_names(dict(scorer.visual.named_parameters()), keys)
    for index, key in enumerate(keys, 1):
        place(scorer.visual, key, read(key), device)
        progress(index / len(keys))


def merge_lora(scorer: ScoringDetector, spec: VisionSpec, settings: LoraSettings,
               state: dict[str, torch.Tensor]) -> None:
    """Adds scale·B·A to each adapted q/k/v weight; every factor must be present, none extra."""
    expected = {lora_key(block, target, part) for block in range(spec.layers) for target in settings.targets
                for part in "AB"}
    check_lora_keys(expected, state)
    shapes = {"A": (settings.r, spec.width), "B": (spec.width, settings.r)}
    for block in range(spec.layers):
        attention = scorer.visual.transformer.resblocks[block].attn
        for target in settings.targets:
            factors = {}
            for part, shape in shapes.items():
                factors[part] = state[lora_key(block, target, part)]
                if tuple(factors[part].shape) != shape:
                    raise ValueError(f"{lora_key(block, target, part)} has shape {tuple(factors[part].shape)}, "
                                     f"expected {shape}")
            layer = getattr(attention, target)
            with torch.no_grad():
                weight = merged_weight(layer.weight, factors["A"].to(layer.weight.device),
                                       factors["B"].to(layer.weight.device), settings.scaling)
            if not bool(torch.isfinite(weight).all()):
                raise CheckpointError(f"the LoRA update of transformer.resblocks.{block}.attn.{target} overflows "
                                      f"(scale x B A is not finite); this checkpoint cannot give a finite score")
            layer.weight = nn.Parameter(weight, requires_grad=False)


def place_head(scorer: ScoringDetector, heads: dict[str, torch.Tensor], device: str | torch.device) -> None:
    for part in ("weight", "bias"):
        value = heads.get(f"h_img.{part}")
        expected = tuple(getattr(scorer.head, part).shape)
        if value is None or tuple(value.shape) != expected:
            got = None if value is None else tuple(value.shape)
            raise ValueError(f"head h_img.{part} has shape {got}, expected {expected}")
        place(scorer.head, part, value, device)
