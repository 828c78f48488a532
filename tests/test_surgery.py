"""trainer.surgery: eq. 16 (paper mode), the authors' hook (reference mode), the ablations."""

import pytest
import torch

from trainer.surgery import SurgeryError, harmful_direction, surgery_gradient

LAM = 0.2


def direct_eq16(g_task, g_text, g_img, lam):
    """Row by row with an explicit d x d projection matrix, in float64."""
    out = []
    for task, text, img in zip(g_task.double(), g_text.double(), g_img.double()):
        harm = text.clamp(min=0)
        projector = torch.eye(task.numel(), dtype=torch.float64)
        if harm.norm() > 0:
            unit = harm / harm.norm()
            projector = projector - torch.outer(unit, unit)
        out.append(projector @ task + lam * img.clamp(max=0))
    return torch.stack(out)


def authors_hook(g_task, g_text, g_img, lam):
    """The authors' networks/trainer.py: loss L_img + lam * mean_i <f_i, [g_img_i]_->, and a hook
    on f that removes the component along relu(g_text)/(||relu(g_text)|| + 1e-6)."""
    f = torch.zeros_like(g_task, dtype=torch.float64, requires_grad=True)
    g_harm = torch.relu(g_text.double())
    g_harm = g_harm / (g_harm.norm(p=2, dim=-1, keepdim=True) + 1e-6)
    g_help = torch.minimum(g_img.double(), torch.zeros_like(g_img.double()))
    f.register_hook(lambda grad: grad - (grad * g_harm).sum(-1, keepdim=True) * g_harm)
    loss = (f * g_task.double()).sum() + lam * (f * g_help).sum(dim=-1).mean()
    loss.backward()
    return f.grad


def sample(b=6, d=16, seed=0, zero_rows=(1, 4)):
    gen = torch.Generator().manual_seed(seed)
    g_task, g_text, g_img = (torch.randn(b, d, generator=gen) for _ in range(3))
    for row in zero_rows:
        g_text[row] = -g_text[row].abs()  # no positive coordinate: [g_text]_+ = 0
    return g_task, g_text, g_img


def test_paper_mode_matches_eq16_including_zero_harm_rows():
    g_task, g_text, g_img = sample()
    got = surgery_gradient(g_task, g_text, g_img, LAM, "paper")
    expected = direct_eq16(g_task, g_text, g_img, LAM)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-6)
    # zero [g_text]_+ rows: no projection, only the lambda term is added
    for row in (1, 4):
        torch.testing.assert_close(got[row], g_task[row] + LAM * g_img[row].clamp(max=0))


def test_reference_mode_matches_authors_hook():
    g_task, g_text, g_img = sample(b=5, d=24, seed=3, zero_rows=(2,))
    got = surgery_gradient(g_task, g_text, g_img, LAM, "reference")  # the authors' 1e-6 by default
    torch.testing.assert_close(got.double(), authors_hook(g_task, g_text, g_img, LAM), rtol=1e-5, atol=1e-6)
    # the zero-harm row is g_task + (lam/B) [g_img]_-, unprojected
    torch.testing.assert_close(got[2], g_task[2] + LAM / 5 * g_img[2].clamp(max=0))


def test_reference_mode_passes_the_authors_epsilon():
    """A harmful part of norm ~1e-7 is barely a direction with (norm + 1e-6): the authors' hook
    leaves that row almost unprojected, an exact unit vector would project it fully."""
    g_task, g_text, g_img = sample(b=4, d=16, seed=8, zero_rows=())
    g_text[1] = g_text[1] * (1e-7 / g_text[1].clamp(min=0).norm())
    got = surgery_gradient(g_task, g_text, g_img, LAM, "reference")
    torch.testing.assert_close(got.double(), authors_hook(g_task, g_text, g_img, LAM), rtol=1e-5, atol=1e-6)
    exact = surgery_gradient(g_task, g_text, g_img, LAM, "reference", harm_eps=0.0)
    assert (exact[1] - got[1]).abs().max() > 1e-2
    torch.testing.assert_close(exact[0], got[0], rtol=1e-4, atol=1e-5)  # ordinary rows: same to ~1e-6


def test_reference_mode_lambda_uses_the_global_batch():
    """Rows that are one micro-batch of a global batch B get lam / B, not lam / rows."""
    g_task, g_text, g_img = sample(b=4, d=16, seed=9, zero_rows=(1,))
    as_part = surgery_gradient(g_task, g_text, g_img, LAM, "reference", batch_size=16)
    torch.testing.assert_close(as_part, surgery_gradient(g_task, g_text, g_img, LAM / 4, "reference"))
    with pytest.raises(SurgeryError):
        surgery_gradient(g_task, g_text, g_img, LAM, "reference", batch_size=3)


def test_result_is_orthogonal_to_harm_direction():
    g_task, g_text, g_img = sample(b=8, d=32, seed=7, zero_rows=())
    unit = harmful_direction(g_text)
    projected = surgery_gradient(g_task, g_text, g_img, 0.0, "paper")
    assert (projected * unit).sum(-1).abs().max() < 1e-5
    reference = surgery_gradient(g_task, g_text, g_img, LAM, "reference")
    assert (reference * unit).sum(-1).abs().max() < 1e-5


@pytest.mark.parametrize("mode", ["paper", "reference"])
def test_ablations(mode):
    g_task, g_text, g_img = sample(seed=11)
    b = g_task.shape[0]
    lam_term = LAM * g_img.clamp(max=0) / (b if mode == "reference" else 1)
    # neither: plain fine-tuning gradient
    plain = surgery_gradient(g_task, g_text, g_img, LAM, mode, orthogonal_suppression=False, prior_alignment=False)
    torch.testing.assert_close(plain, g_task)
    # no orthogonal suppression: g_task untouched, lambda term added
    only_prior = surgery_gradient(g_task, g_text, g_img, LAM, mode, orthogonal_suppression=False)
    torch.testing.assert_close(only_prior, g_task + lam_term)
    # no prior alignment: no lambda term (g_img may be None)
    only_ortho = surgery_gradient(g_task, g_text, None, LAM, mode, prior_alignment=False)
    torch.testing.assert_close(only_ortho, surgery_gradient(g_task, g_text, g_img, 0.0, mode))
    assert not torch.allclose(only_ortho, g_task)
    # both: the full formula of the mode
    full = surgery_gradient(g_task, g_text, g_img, LAM, mode)
    if mode == "paper":
        torch.testing.assert_close(full, only_ortho + lam_term)
    else:
        torch.testing.assert_close(full, surgery_gradient(g_task + lam_term, g_text, None, 0.0, mode))


def test_bf16_inputs_computed_in_fp32_and_cast_back():
    g_task, g_text, g_img = sample(b=4, d=64, seed=5, zero_rows=(1,))
    lo = [t.to(torch.bfloat16) for t in (g_task, g_text, g_img)]
    got = surgery_gradient(*lo, LAM, "paper")
    assert got.dtype == torch.bfloat16
    expected = direct_eq16(*[t.float() for t in lo], LAM)
    torch.testing.assert_close(got.double(), expected.to(torch.bfloat16).double(), rtol=2e-2, atol=2e-2)


def test_scaling_and_accumulation_are_linear():
    """A loss scale s and 1/M accumulation on g_task are matched by lam * s / M."""
    g_task, g_text, g_img = sample(seed=2)
    s, m = 1024.0, 4
    for mode in ("paper", "reference"):
        scaled = surgery_gradient(g_task * s / m, g_text * s / m, g_img, LAM * s / m, mode)
        torch.testing.assert_close(scaled / s * m, surgery_gradient(g_task, g_text, g_img, LAM, mode))


def test_bad_arguments():
    g = torch.zeros(2, 3)
    with pytest.raises(SurgeryError):
        surgery_gradient(g, g, g, LAM, "other")
    with pytest.raises(SurgeryError):
        surgery_gradient(g, torch.zeros(2, 4), g, LAM, "paper")
    with pytest.raises(SurgeryError):
        surgery_gradient(g, g, None, LAM, "paper")
