"""Attention replacement, LoRA placement and the teacher (adapters disabled)."""

import pytest
import torch
from torch import nn

from dgs_desktop.detector.attention import SplitAttention, split_all_attention
from dgs_desktop.detector.backbone import build_clip
from dgs_desktop.detector.model import DGSDetector, LoraSettings, build_detector


@pytest.mark.parametrize("bias", [True, False])
def test_split_attention_matches_multihead(bias):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(48, 4, bias=bias, batch_first=True)
    x = torch.randn(3, 10, 48)
    mask = torch.triu(torch.full((10, 10), float("-inf")), diagonal=1)
    split = SplitAttention.from_multihead(mha)
    for attn_mask in (None, mask):
        expected = mha(x, x, x, need_weights=False, attn_mask=attn_mask)[0]
        actual = split(x, x, x, need_weights=False, attn_mask=attn_mask)[0]
        torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-6)


def test_backbone_with_split_attention_equals_open_clip_original():
    import open_clip

    from dgs_desktop.detector import backbone

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(backbone._TEST_TINY_SEED)
        original = open_clip.model.CLIP(**backbone._TEST_TINY_CFG).eval()
    split = build_clip("test-tiny")
    assert not any(isinstance(m, nn.MultiheadAttention) for m in split.visual.modules())
    assert sum(isinstance(m, SplitAttention) for m in split.visual.modules()) == 2
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(split.encode_image(images), original.encode_image(images),
                                   rtol=1e-5, atol=1e-5)


def test_split_all_attention_counts_replacements():
    model = nn.Sequential(nn.MultiheadAttention(8, 2, batch_first=True),
                          nn.Sequential(nn.MultiheadAttention(8, 2, batch_first=True)))
    assert split_all_attention(model) == 2


def test_lora_only_on_qkv_of_every_vision_block():
    detector = build_detector("test-tiny", None)
    trainable = [name for name, p in detector.named_parameters() if p.requires_grad]
    lora_params = [name for name in trainable if "lora_" in name]
    blocks = len(detector.visual.get_base_model().transformer.resblocks)
    # one A and one B matrix for each of q, k, v in every block
    assert len(lora_params) == blocks * 3 * 2
    for name in lora_params:
        assert any(f"attn.{target}." in name for target in ("q_proj", "k_proj", "v_proj")), name
    assert set(trainable) - set(lora_params) == {"head.weight", "head.bias"}


def test_lora_scaling_recorded_and_applied():
    settings = LoraSettings(r=6, alpha=6, rslora=True)
    assert settings.scaling == pytest.approx(6 / 6 ** 0.5)
    assert settings.to_manifest()["scaling_rule"] == "alpha/sqrt(r)"
    detector = build_detector("test-tiny", None, settings)
    layer = detector.visual.get_base_model().transformer.resblocks[0].attn.q_proj
    assert layer.scaling["default"] == pytest.approx(settings.scaling)
    plain = LoraSettings(rslora=False)
    assert LoraSettings.from_manifest(plain.to_manifest()) == plain


def test_teacher_is_the_base_model_even_after_lora_moves():
    detector = build_detector("test-tiny", None).eval()
    base = build_clip("test-tiny")
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        for name, param in detector.named_parameters():
            if "lora_B" in name:
                param.normal_()
        student = detector.features(images)
        teacher = detector.teacher_features(images)
        reference = base.encode_image(images)
    torch.testing.assert_close(teacher, reference, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(student, reference, atol=1e-3)
    # adapters are back on after the context
    with torch.no_grad():
        torch.testing.assert_close(detector.features(images), student)


def test_head_reads_unnormalised_projected_embedding():
    detector = build_detector("test-tiny", None).eval()
    images = torch.randn(3, 3, 224, 224)
    with torch.no_grad():
        features = detector.features(images)
        expected = features @ detector.head.weight.T + detector.head.bias
        torch.testing.assert_close(detector(images), expected.squeeze(-1))
    assert isinstance(detector, DGSDetector)
