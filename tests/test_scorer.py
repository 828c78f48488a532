"""The torch-only scoring network (`detector.scorer`) scores like the open_clip + peft reference
(to float tolerance: two implementations, never bit-equality), imports neither library, and is
the one network the window, the scan and evaluate score with."""

from __future__ import annotations

import copy
import csv
import json
import re
import shutil
import subprocess
import sys

import pytest
import torch

from dgs_desktop.detector.backbone import TEST_TINY, backbone_record
from dgs_desktop.detector.checkpoint import load_detector, save_checkpoint
from dgs_desktop.detector.manifest import BASE_FILE, MANIFEST_NAME, LoraSettings, read_checkpoint
from dgs_desktop.detector.model import DGSDetector, detector_from_record
from dgs_desktop.detector.scorer import load_scorer, merged_weight
from dgs_desktop.detector.vit import ScoringDetector, UnsupportedBackbone, vision_spec


def _images(count: int = 6, seed: int = 3) -> torch.Tensor:
    """Inputs as the scan makes them (ImageNet-normalised pixels lie in about [-2, 2.6])."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(count, 3, 224, 224, generator=generator) * 4.6 - 2.0


def _randomise(detector: DGSDetector, seed: int = 11, scale: float = 0.3) -> DGSDetector:
    """Non-zero LoRA updates and head, so that the merge and the head matter to the score."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in detector.named_parameters():
            if "lora_" in name or name.startswith("head."):
                param.copy_(torch.randn(param.shape, generator=generator) * scale)
    return detector


def _checkpoint(folder, record: dict, lora: LoraSettings = LoraSettings(), scale: float = 0.3):
    detector = _randomise(detector_from_record(record, lora, load_pretrained=False), scale=scale)
    save_checkpoint(folder, detector, architecture=record["model_name"], base_weights="random-init",
                    bundle_base=True)
    return read_checkpoint(folder)


def _assert_scores_alike(checkpoint, images, atol: float = 1e-4) -> torch.Tensor:
    scorer, reference = load_scorer(checkpoint), load_detector(checkpoint)
    assert isinstance(scorer, ScoringDetector)  # the torch-only network, not the reference
    with torch.no_grad():
        fast, slow = scorer(images), reference(images)
    assert fast.shape == (len(images),)
    torch.testing.assert_close(fast, slow, rtol=1e-4, atol=atol)
    assert slow.std() > 10 * atol  # the images get different scores: the comparison means something
    return slow


def _tiny_record(**vision_changes) -> dict:
    record = backbone_record(TEST_TINY, None)
    record["config"]["vision_cfg"].update(vision_changes)
    return record


def test_test_tiny_scores_like_the_reference(tiny_checkpoint):
    _assert_scores_alike(tiny_checkpoint, _images())


@pytest.mark.parametrize("vision, quick_gelu", [
    ({}, False),
    ({"ls_init_value": 0.5}, True),
    ({"pool_type": "avg", "final_ln_after_pool": True}, True),
    ({"no_ln_pre": True, "norm_kwargs": {"eps": 1e-6}}, True),
    ({"mlp_ratio": 2.0, "head_width": 32, "pos_embed_type": "sin_cos_2d"}, False),
], ids=["gelu", "layer-scale", "avg-pool-ln-after", "no-ln-pre-eps", "mlp-heads-sincos"])
def test_each_supported_vision_option_scores_like_the_reference(tmp_path, vision, quick_gelu):
    record = _tiny_record(**vision)
    record["config"]["quick_gelu"] = quick_gelu
    _assert_scores_alike(_checkpoint(tmp_path / "ckpt", record), _images())


def test_the_recorded_lora_scale_rule_and_targets_are_applied(tmp_path):
    lora = LoraSettings(r=4, alpha=8.0, rslora=False, targets=("q_proj", "v_proj"))
    checkpoint = _checkpoint(tmp_path / "ckpt", _tiny_record(), lora, scale=0.5)
    plain = _assert_scores_alike(checkpoint, _images())
    manifest = json.loads((tmp_path / "ckpt" / MANIFEST_NAME).read_text())
    manifest["lora"]["rslora"] = True  # alpha/sqrt(r) = 4 instead of alpha/r = 2
    (tmp_path / "ckpt" / MANIFEST_NAME).write_text(json.dumps(manifest))
    rescaled = _assert_scores_alike(read_checkpoint(tmp_path / "ckpt"), _images())
    assert (rescaled - plain).abs().max() > 1e-2  # the rule changes the scores, and both paths follow it


def test_merged_weight_is_w_plus_scale_b_a():
    weight, a, b = torch.randn(5, 3), torch.randn(2, 3), torch.randn(5, 2)
    x = torch.randn(7, 3)
    torch.testing.assert_close(x @ merged_weight(weight, a, b, 1.5).T, x @ weight.T + 1.5 * (x @ a.T) @ b.T)


def test_a_random_weight_vit_b_32_scores_like_the_reference(tmp_path):
    record = backbone_record("ViT-B-32", None)
    assert record["config"]["quick_gelu"] is False  # nn.GELU, where test-tiny has QuickGELU
    checkpoint = _checkpoint(tmp_path / "b32", record, scale=0.05)
    _assert_scores_alike(checkpoint, _images(4))


def test_base_weights_open_clip_provides_are_moved_into_the_same_network(tiny_checkpoint, tmp_path):
    folder = tmp_path / "unbundled"
    shutil.copytree(tiny_checkpoint.directory, folder)
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    manifest["base_weights"] = {"bundled": False, "id": "random-init", "file": None}
    del manifest["files"][BASE_FILE]  # test-tiny then rebuilds its seeded base weights
    (folder / BASE_FILE).unlink()
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    _assert_scores_alike(read_checkpoint(folder), _images())


def test_a_backbone_the_network_does_not_implement_is_scored_by_the_reference(tiny_checkpoint, monkeypatch):
    import dgs_desktop.detector.scorer as scorer_module

    def unsupported(record):
        raise UnsupportedBackbone("attentional pooling")

    monkeypatch.setattr(scorer_module, "vision_spec", unsupported)
    assert isinstance(load_scorer(tiny_checkpoint), DGSDetector)


@pytest.mark.parametrize("changes, reason", [
    ({"attentional_pool": True}, "attentional_pool=True"),
    ({"timm_model_name": "vit_base_patch16_224"}, "timm_model_name"),
    ({"layers": [3, 4, 6, 3]}, "ResNet"),
    ({"pool_type": "none"}, "pool_type='none'"),
    ({"output_tokens": True}, "output_tokens=True"),
    ({"qk_norm": True}, "qk_norm=True"),
    ({"block_type": "custom"}, "block_type='custom'"),
    ({"act_kwargs": {"approximate": "tanh"}}, "act_kwargs"),
    ({"norm_kwargs": {"elementwise_affine": False}}, "norm_kwargs"),
    ({"a_future_option": 1}, "'a_future_option'"),
], ids=lambda value: next(iter(value)) if isinstance(value, dict) else "")
def test_vision_options_it_does_not_compute_are_refused_by_name(changes, reason):
    with pytest.raises(UnsupportedBackbone, match=re.escape(reason)):
        vision_spec(_tiny_record(**changes))


def test_the_b_32_and_l_14_records_are_supported():
    for arch, pretrained in (("ViT-B-32", None), ("ViT-L-14", "openai")):
        record = copy.deepcopy(backbone_record(arch, pretrained))
        spec = vision_spec(record)
        assert spec.quick_gelu is (pretrained == "openai") and spec.pool == "tok"


def test_scanning_one_file_imports_neither_open_clip_nor_peft(tiny_checkpoint, tmp_path):
    from imagegen import noise_rgb

    noise_rgb(96, 64).save(tmp_path / "one.png")
    probe = ("import json, sys\nfrom dgs_desktop.cli import main\n"
             f"code = main(['scan', {str(tmp_path / 'one.png')!r}, '--checkpoint', {str(tiny_checkpoint.directory)!r},"
             f" '--csv', {str(tmp_path / 'out.csv')!r}, '--no-progress', '--device', 'cpu'])\n"
             "heavy = ('open_clip', 'peft', 'torchvision', 'transformers')\n"
             "print(json.dumps([code, sorted(name for name in heavy if name in sys.modules)]))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == [0, []]
    (row,) = csv.DictReader(open(tmp_path / "out.csv", newline="", encoding="utf-8"))
    assert row["status"] == "ok" and row["fake_probability"]


def test_the_window_and_the_scan_give_a_file_the_same_score(tiny_checkpoint, tmp_path):
    from imagegen import noise_rgb

    from dgs_desktop.cli import main
    from dgs_desktop.gui.model_controller import load_session
    from dgs_desktop.record import format_probability

    paths = []
    for index, (width, height) in enumerate(((96, 64), (300, 200), (257, 513))):
        paths.append(tmp_path / f"img{index}.png")
        noise_rgb(width, height, seed=index).save(paths[-1])
    assert main(["scan", *map(str, paths), "--checkpoint", str(tiny_checkpoint.directory), "--csv",
                 str(tmp_path / "out.csv"), "--no-progress", "--device", "cpu"]) == 0
    scanned = {row["path"]: row["fake_probability"]
               for row in csv.DictReader(open(tmp_path / "out.csv", newline="", encoding="utf-8"))}
    session = load_session(tiny_checkpoint, "cpu")
    assert isinstance(session.scanner.runner.detector, ScoringDetector)
    window = {str(result.path): format_probability(result.fake_probability) for result in session.scanner.scan(paths)}
    assert window == scanned and len(set(window.values())) == 3
