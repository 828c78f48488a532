"""Distillation-guided gradient surgery (DGS-Net, Sections 3 and 4).

All functions act on per-sample feature gradients of shape (B, d): row i belongs to sample i.
They are pure (no state, no autograd) and compute in at least float32 whatever the input
dtype, so bf16 gradients from autocast lose nothing in the projection; the result is cast
back to the dtype of `g_task`.

Notation (eq. 7-8): g_task = dL_img/df, g_text = dL_text/dt, g_img = dL_img^T/df^T, all from
batch-mean BCE-with-logits losses, so each row already carries the 1/B of the mean.
"""

from __future__ import annotations

import torch

MODES = ("paper", "reference")
AUTHORS_HARM_EPS = 1e-6  # networks/trainer.py: relu(g_text) / (||relu(g_text)|| + 1e-6)


class SurgeryError(ValueError):
    pass


def positive_part(a: torch.Tensor) -> torch.Tensor:
    """[a]_+ = max(a, 0) coordinate-wise (eq. 3): the harmful coordinates."""
    return a.clamp_min(0)


def negative_part(a: torch.Tensor) -> torch.Tensor:
    """[a]_- = min(a, 0) coordinate-wise (eq. 4): the beneficial coordinates."""
    return a.clamp_max(0)


def harmful_direction(g_text: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """g^_harm = [g_text]_+ / ||[g_text]_+|| per row (eqs. 9-10).

    A row whose positive part is all zero has no harmful direction: its result row is zero,
    so the projection of eq. 11 leaves that sample's gradient unchanged. `eps > 0` instead
    divides by (norm + eps), as the authors' code does with eps = 1e-6 (zero rows also give
    zero there).
    """
    harm = positive_part(g_text)
    norm = harm.norm(dim=-1, keepdim=True)
    if eps > 0:
        return harm / (norm + eps)
    safe = torch.where(norm > 0, norm, torch.ones_like(norm))
    return torch.where(norm > 0, harm / safe, torch.zeros_like(harm))


def project_out(v: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
    """(I - u u^T) v per row (eq. 11); a zero row of `unit` leaves v unchanged."""
    return v - (v * unit).sum(dim=-1, keepdim=True) * unit


def prior_alignment_term(g_img: torch.Tensor) -> torch.Tensor:
    """g_help = [g_img]_- (eq. 12), the gradient of L_align = <f, g_help> w.r.t. f (eq. 14)."""
    return negative_part(g_img)


def surgery_gradient(g_task: torch.Tensor, g_text: torch.Tensor, g_img: torch.Tensor | None,
                     lam: float, mode: str = "reference", *, orthogonal_suppression: bool = True,
                     prior_alignment: bool = True, harm_eps: float | None = None,
                     batch_size: int | None = None) -> torch.Tensor:
    """The gradient installed on the student feature f, shape (B, d).

    mode "paper" (eq. 16):      g_final = (I - g^ g^T) g_task + lam * [g_img]_-,
                                g^ = [g_text]_+ / ||[g_text]_+||
    mode "reference" (authors' networks/trainer.py hook: the loss adds
    lam * mean_i <f_i, [g_img_i]_-> and a tensor hook projects the whole gradient of f):
                                g_final = (I - g^ g^T) (g_task + (lam / B) * [g_img]_-),
                                g^ = [g_text]_+ / (||[g_text]_+|| + 1e-6)

    `batch_size` is the B of lam / B: the global batch (all processes, all micro-batches)
    when the rows are one micro-batch of it; default: the number of rows. `harm_eps`
    overrides the normaliser's epsilon (default: 1e-6 in reference mode, 0 in paper mode);
    with eps > 0 the result depends on the scale of g_text, so pass g_text as the authors'
    batch-mean gradient (rows carrying 1/B) for bit-level fidelity.

    Table-4 ablations: `orthogonal_suppression=False` drops the projection (g_task passes
    untouched), `prior_alignment=False` drops the lam term (g_img may then be None).

    Gradient scaling and accumulation: the result is linear in (g_task, lam) and the
    projection does not depend on the scale of g_text, so a caller whose g_task carries a
    loss scale s and a 1/M accumulation factor passes lam * s / M.
    """
    if mode not in MODES:
        raise SurgeryError(f"unknown surgery mode {mode!r} (use one of {', '.join(MODES)})")
    if g_task.dim() != 2:
        raise SurgeryError(f"g_task must be (B, d), got shape {tuple(g_task.shape)}")
    if g_text.shape != g_task.shape:
        raise SurgeryError(f"g_text shape {tuple(g_text.shape)} differs from g_task {tuple(g_task.shape)}")
    use_prior = prior_alignment and lam != 0
    if use_prior:
        if g_img is None:
            raise SurgeryError("prior alignment needs g_img")
        if g_img.shape != g_task.shape:
            raise SurgeryError(f"g_img shape {tuple(g_img.shape)} differs from g_task {tuple(g_task.shape)}")

    if harm_eps is None:
        harm_eps = AUTHORS_HARM_EPS if mode == "reference" else 0.0
    batch = g_task.shape[0] if batch_size is None else int(batch_size)
    if batch < g_task.shape[0]:
        raise SurgeryError(f"batch_size {batch} is smaller than the {g_task.shape[0]} rows given")

    out_dtype = g_task.dtype
    work = torch.promote_types(out_dtype, torch.float32)
    task = g_task.to(work)
    help_term = None
    if use_prior and g_img is not None:  # use_prior without g_img was refused above
        help_term = prior_alignment_term(g_img.to(work)) * float(lam)
        if mode == "reference":
            help_term = help_term / batch

    if mode == "reference" and help_term is not None:
        task = task + help_term
        help_term = None
    if orthogonal_suppression:
        task = project_out(task, harmful_direction(g_text.to(work), eps=harm_eps))
    if help_term is not None:
        task = task + help_term
    return task.to(out_dtype)
