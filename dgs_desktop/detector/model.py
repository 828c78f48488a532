"""The DGS-Net detector: CLIP image encoder + LoRA on q/k/v + a linear head (paper Sec. 4.1).

The teacher E_img^T (eq. 6) is the same encoder with the adapters disabled, not a second copy:
for Linear LoRA, disabling the adapters gives exactly the pre-trained weights.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, cast

import torch
from torch import nn

from .backbone import DEFAULT_ARCH, DEFAULT_PRETRAINED, backbone_record, clip_from_record, embed_dim_of
from .manifest import LoraSettings

if TYPE_CHECKING:
    from peft import PeftModel


class _TextTower(Protocol):
    """What the detector calls on open_clip's CLIP model (open_clip has no type information)."""

    def encode_text(self, text: torch.Tensor, normalize: bool = False) -> torch.Tensor: ...


def add_lora(visual: nn.Module, lora: LoraSettings) -> PeftModel:
    """Wraps the vision tower with peft LoRA on q/k/v of every block."""
    from peft import LoraConfig, get_peft_model

    # peft annotates lora_alpha as int but only divides by it (alpha / r): a float alpha is kept as is
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha,  # type: ignore[arg-type]
                        lora_dropout=lora.dropout,
                        target_modules=list(lora.targets), use_rslora=lora.rslora, bias="none")
    # mixed=False (the default) gives a PeftModel, not a PeftMixedModel
    return cast("PeftModel", get_peft_model(visual, config))


class DGSDetector(nn.Module):
    """Student encoder E_img (with LoRA) and the image head h_img.

    `text_model` (the frozen CLIP text tower, needed only for training) is kept when
    `with_text=True`; inference never needs it.
    """

    def __init__(self, clip_model: nn.Module, lora: LoraSettings, with_text: bool = False,
                 backbone: dict[str, Any] | None = None):
        super().__init__()
        self.lora = lora
        self.backbone = backbone  # the record the network was built from (saved in checkpoints)
        self.embed_dim = embed_dim_of(clip_model)
        self.visual = add_lora(clip_model.get_submodule("visual"), lora)
        self.head = nn.Linear(self.embed_dim, 1)
        # The whole CLIP model is registered for its text tower; its `.visual` is the same
        # (LoRA-injected) module as self.visual, so parameters are shared, not copied.
        self.text_model: nn.Module | None = clip_model if with_text else None

    # -- features -------------------------------------------------------------------------
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """f = E_img(x; theta) (eq. 5): the unnormalised projected embedding."""
        embedding: torch.Tensor = self.visual(images)
        return embedding

    @contextmanager
    def teacher(self) -> Iterator[None]:
        """Inside this context `features` computes f^T = E_img^T(x) (eq. 6)."""
        with self.visual.disable_adapter():
            yield

    def teacher_features(self, images: torch.Tensor) -> torch.Tensor:
        with self.teacher():
            embedding: torch.Tensor = self.visual(images)
        return embedding

    def text_features(self, tokens: torch.Tensor) -> torch.Tensor:
        """t = E_text(z; phi) (eq. 5), unnormalised."""
        if self.text_model is None:
            raise RuntimeError("this detector was built without its text tower")
        return cast(_TextTower, self.text_model).encode_text(tokens, normalize=False)

    # -- scoring --------------------------------------------------------------------------
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of h_img(f), shape (B,); sigmoid gives the fake probability."""
        logits: torch.Tensor = self.head(self.features(images))
        return logits.squeeze(-1)

    def lora_state_dict(self) -> dict[str, torch.Tensor]:
        from peft import get_peft_model_state_dict

        return {k: v.detach().contiguous() for k, v in get_peft_model_state_dict(self.visual).items()}

    def load_lora_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(self.visual, state)
        unexpected = getattr(result, "unexpected_keys", [])
        if unexpected:
            raise ValueError(f"LoRA weights do not match the architecture: unexpected keys {unexpected[:3]}")

    def base_visual_state_dict(self) -> dict[str, torch.Tensor]:
        """The frozen pre-trained vision weights (without LoRA), in SplitAttention layout."""
        base = self.visual.get_base_model()
        return {k.replace(".base_layer", ""): v.detach().contiguous()
                for k, v in base.state_dict().items() if "lora_" not in k}

    def base_visual_tensors(self) -> dict[str, torch.Tensor]:
        """The frozen vision tensors to fill, by the names `base_visual_state_dict` gives them."""
        base = self.visual.get_base_model()
        return {k.replace(".base_layer", ""): v for k, v in base.state_dict(keep_vars=True).items()
                if "lora_" not in k}

    def load_base_visual_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        targets = self.base_visual_tensors()
        check_same_names(targets, state)
        for short, tensor in state.items():
            copy_weight(targets[short], tensor, short)


def check_same_names(targets: Collection[str], state: Collection[str]) -> None:
    """Bundled base weights name exactly the tensors of the architecture."""
    missing = sorted(set(targets) - set(state))
    extra = sorted(set(state) - set(targets))
    if missing or extra:
        raise ValueError(f"bundled base weights do not match the architecture "
                         f"(missing {missing[:3]}, unexpected {extra[:3]})")


def copy_weight(target: torch.Tensor, value: torch.Tensor, name: str) -> None:
    if target.shape != value.shape:
        raise ValueError(f"bundled weight {name} has shape {tuple(value.shape)}, expected {tuple(target.shape)}")
    with torch.no_grad():
        target.copy_(value)


def build_detector(arch: str = DEFAULT_ARCH, pretrained: str | None = DEFAULT_PRETRAINED,
                   lora: LoraSettings = LoraSettings(), with_text: bool = False) -> DGSDetector:
    """A detector on a named backbone; `pretrained=None` gives random backbone weights."""
    return detector_from_record(backbone_record(arch, pretrained), lora, with_text=with_text)


def detector_from_record(record: dict[str, Any], lora: LoraSettings = LoraSettings(), with_text: bool = False,
                         load_pretrained: bool = True, on_meta: bool = False) -> DGSDetector:
    """A detector on the backbone a record describes (see `backbone.clip_from_record`; with
    `on_meta` only the head has memory and values until the caller loads the rest)."""
    if on_meta and with_text:
        raise ValueError("the text tower has no weights in a checkpoint: it cannot be built on the meta device")
    clip_model = clip_from_record(record, load_pretrained=load_pretrained and not on_meta, on_meta=on_meta)
    return DGSDetector(clip_model, lora, with_text=with_text, backbone=record)


def fake_probability(logits: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(logits.float())
