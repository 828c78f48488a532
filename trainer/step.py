"""One DGS stage-2 backward (Section 4.4): head losses, feature gradients, surgery, and the
surgered gradient installed as the gradient of the student feature f (eq. 17).

The heads run in float32 on detached copies of f, t and f^T, so the three feature gradients
of eq. 8 come out of one small backward; then `f.backward(g_final)` runs the encoder's
backward once with g_final in place of dL/df. This is the same as a tensor hook on f that
replaces its gradient, without a second graph through the heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .surgery import negative_part, surgery_gradient


@dataclass(frozen=True)
class SurgeryConfig:
    lam: float = 0.2
    mode: str = "reference"
    orthogonal_suppression: bool = True
    prior_alignment: bool = True

    @property
    def needs_teacher(self) -> bool:
        return self.prior_alignment and self.lam != 0

    def to_manifest(self) -> dict:
        return {"lambda": self.lam, "mode": self.mode, "orthogonal_suppression": self.orthogonal_suppression,
                "prior_alignment": self.prior_alignment}


@dataclass
class StepStats:
    loss: float
    loss_img: float
    loss_text: float
    loss_teacher: float
    loss_align: float
    acc: float

    FIELDS = ("loss", "loss_img", "loss_text", "loss_teacher", "loss_align", "acc")

    def as_tensor(self) -> torch.Tensor:
        return torch.tensor([getattr(self, k) for k in self.FIELDS], dtype=torch.float64)

    @classmethod
    def from_tensor(cls, values) -> StepStats:
        return cls(*[float(v) for v in values])


def bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """BCE-with-logits, mean over the batch (eq. 7)."""
    return F.binary_cross_entropy_with_logits(logits.squeeze(-1), labels)


def head_gradients(f: torch.Tensor, t: torch.Tensor, f_teacher: torch.Tensor | None, labels: torch.Tensor,
                   h_img: nn.Linear, h_text: nn.Linear, h_teacher: nn.Linear | None, factor: float = 1.0):
    """Losses of eq. 7 and the feature gradients of eq. 8 (float32).

    Accumulates `factor` * d(L_img + L_text)/d(head params) into h_img/h_text `.grad` and
    returns (factor * g_task, factor * g_text, g_img or None, losses). g_img is unscaled;
    h_teacher is frozen and gets no gradient.
    """
    with torch.autocast(f.device.type, enabled=False):
        fd = f.detach().float().requires_grad_(True)
        td = t.detach().float().requires_grad_(True)
        labels = labels.float()
        logits = h_img(fd)
        loss_img = bce(logits, labels)
        loss_text = bce(h_text(td), labels)
        ((loss_img + loss_text) * factor).backward()
        g_img = None
        loss_teacher = torch.zeros(())
        if f_teacher is not None and h_teacher is not None:
            fT = f_teacher.detach().float().requires_grad_(True)
            loss_teacher = bce(h_teacher(fT), labels)
            (g_img,) = torch.autograd.grad(loss_teacher, fT)
        acc = ((logits.detach().squeeze(-1) > 0).float() == labels).float().mean()
    return fd.grad, td.grad, g_img, (loss_img.detach(), loss_text.detach(), loss_teacher.detach(), acc)


def dgs_backward(f: torch.Tensor, t: torch.Tensor, f_teacher: torch.Tensor | None, labels: torch.Tensor,
                 h_img: nn.Linear, h_text: nn.Linear, h_teacher: nn.Linear | None, cfg: SurgeryConfig, *,
                 loss_scale: float = 1.0, micro_batches: int = 1,
                 global_batch: int | None = None) -> tuple[torch.Tensor, StepStats]:
    """Backward of one (micro-)batch: heads get d(L_img + L_text), the encoder gets g_final.

    `loss_scale` (a GradScaler's current scale) and `micro_batches` (gradient accumulation)
    multiply every gradient, the lambda term included: lam_eff = lam * scale / M.
    `global_batch` is the B of the whole step (all processes and micro-batches; default:
    this batch): with the usual mean over processes and sum over micro-batches, the encoder's
    gradient is then the one-process, one-batch gradient of the same B images in both modes
    (reference mode's lam / B uses the global B, and its harm direction sees g_text at the
    authors' scale, rows carrying 1/B, so the 1e-6 in the normaliser acts as theirs).
    Returns the g_final installed on f (float32) and the stats.
    """
    rows = f.shape[0]
    batch = rows if global_batch is None else int(global_batch)
    factor = float(loss_scale) / micro_batches
    g_task, g_text, g_img, (l_img, l_text, l_teacher, acc) = head_gradients(
        f, t, f_teacher if cfg.needs_teacher else None, labels, h_img, h_text,
        h_teacher if cfg.needs_teacher else None, factor)
    # g_text carries factor / rows per row; the authors' batch-mean gradient carries 1 / B.
    g_text_authors = g_text * (rows / (batch * factor))
    g_final = surgery_gradient(g_task, g_text_authors, g_img, cfg.lam * factor, cfg.mode,
                               orthogonal_suppression=cfg.orthogonal_suppression,
                               prior_alignment=cfg.prior_alignment, batch_size=batch)
    # The surgery ran in float32; f may be bf16 under autocast: cast back before backward.
    f.backward(g_final.to(f.dtype))
    l_align = torch.zeros(())
    if g_img is not None:
        # L_align = <f, g_help> (eq. 13), summed over the batch (paper) or its mean (reference).
        per_sample = (f.detach().float() * negative_part(g_img)).sum(-1)
        l_align = per_sample.mean() if cfg.mode == "reference" else per_sample.sum()
    total = l_img + l_text + cfg.lam * l_align if cfg.prior_alignment else l_img + l_text
    stats = StepStats(float(total), float(l_img), float(l_text), float(l_teacher), float(l_align), float(acc))
    return g_final, stats
