"""The modules a DGS-Net run trains or consults (Sec. 4.1): the detector (LoRA student E_img
with h_img; its teacher is the same encoder with adapters disabled and its frozen text tower
gives t), the text head h_text and the stage-1 probe h_img^T."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from .config import TrainConfig

if TYPE_CHECKING:
    from dgs_desktop.detector.model import DGSDetector


@dataclass
class Networks:
    detector: DGSDetector  # built with its text tower
    h_text: nn.Linear
    h_teacher: nn.Linear  # trained in stage 1 only, frozen afterwards

    @classmethod
    def build(cls, config: TrainConfig, device: torch.device) -> Networks:
        from dgs_desktop.detector.model import build_detector

        torch.manual_seed(config.seed)
        detector = build_detector(config.arch, config.pretrained, config.lora_settings(), with_text=True)
        dim = detector.embed_dim
        networks = cls(detector=detector.to(device), h_text=nn.Linear(dim, 1).to(device),
                       h_teacher=nn.Linear(dim, 1).to(device))
        networks.h_teacher.requires_grad_(False)
        return networks

    def stage2_parameters(self) -> list[nn.Parameter]:
        """What stage 2 trains: LoRA, h_img and h_text (the encoder's base weights stay frozen)."""
        lora = [p for p in self.detector.visual.parameters() if p.requires_grad]
        return lora + list(self.detector.head.parameters()) + list(self.h_text.parameters())

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.detector.head.parameters()) + list(self.h_text.parameters())
