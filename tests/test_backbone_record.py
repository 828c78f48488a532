"""A checkpoint loads into exactly the network that was saved (issue: QuickGELU lost on reload),
and saving never deletes what it did not write."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from open_clip.transformer import QuickGELU

from dgs_desktop.detector.backbone import backbone_record
from dgs_desktop.detector.checkpoint import backbone_of, load_detector, save_checkpoint
from dgs_desktop.detector.manifest import BASE_FILE, MANIFEST_NAME, CheckpointError, read_checkpoint
from dgs_desktop.detector.model import LoraSettings, detector_from_record
from dgs_desktop.detector.patches import mosaics_to_tensor, select_patches


def _inputs(n=3):
    rng = np.random.default_rng(11)
    return mosaics_to_tensor([select_patches(rng.integers(0, 256, (230, 250, 3), dtype=np.uint8)).mosaic
                              for _ in range(n)])


def _activations(detector) -> set[type]:
    return {type(m) for m in detector.visual.modules() if isinstance(m, (torch.nn.GELU, QuickGELU))}


def _trained_like(detector):
    """Non-zero LoRA updates and head, as after training, so the round trip is a real check."""
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, param in detector.named_parameters():
            if "lora_B" in name or name.startswith("head."):
                param.copy_(torch.randn(param.shape, generator=generator) * 0.05)
    return detector


@pytest.fixture(scope="module")
def small_quickgelu_detector():
    """A real open_clip architecture (ViT-S-32) in the QuickGELU configuration OpenAI weights use."""
    record = backbone_record("ViT-S-32", None)
    record["config"]["quick_gelu"] = True
    return _trained_like(detector_from_record(record, LoraSettings(dropout=0.0), load_pretrained=False)).eval()


def test_bundled_real_architecture_round_trip_is_bit_identical_and_keeps_quickgelu(small_quickgelu_detector,
                                                                                   tmp_path):
    detector = small_quickgelu_detector
    assert _activations(detector) == {QuickGELU}
    inputs = _inputs()
    with torch.no_grad():
        before = detector(inputs)
    out = save_checkpoint(tmp_path / "ckpt", detector, architecture="ViT-S-32", base_weights="openai",
                          bundle_base=True)
    checkpoint = read_checkpoint(out)
    assert checkpoint.manifest["backbone"]["config"]["quick_gelu"] is True
    reloaded = load_detector(checkpoint)
    assert _activations(reloaded) == {QuickGELU}
    with torch.no_grad():
        assert torch.equal(reloaded(inputs), before)


def test_openai_weights_are_recorded_with_quickgelu():
    # open_clip's plain ViT-L-14 config uses nn.GELU; OpenAI's weights need QuickGELU.
    assert backbone_record("ViT-L-14", None)["config"]["quick_gelu"] is False
    assert backbone_record("ViT-L-14", "openai")["config"]["quick_gelu"] is True
    assert backbone_record("ViT-L-14-quickgelu", None)["config"]["quick_gelu"] is True


def test_format_1_checkpoint_with_openai_base_is_rebuilt_with_quickgelu(small_quickgelu_detector, tmp_path):
    """Checkpoints written before the backbone record existed still load into QuickGELU."""
    out = save_checkpoint(tmp_path / "old", small_quickgelu_detector, architecture="ViT-S-32",
                          base_weights="openai", bundle_base=True)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    del manifest["backbone"]
    manifest["format_version"] = 1
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    checkpoint = read_checkpoint(out)
    assert backbone_of(checkpoint)["config"]["quick_gelu"] is True
    inputs = _inputs(2)
    with torch.no_grad():
        assert torch.equal(load_detector(checkpoint)(inputs), small_quickgelu_detector(inputs))


def test_test_tiny_round_trip_records_its_configuration(tiny_checkpoint, tmp_path):
    detector = load_detector(tiny_checkpoint)
    out = save_checkpoint(tmp_path / "tiny", detector, architecture="test-tiny", base_weights=None)
    record = read_checkpoint(out).manifest["backbone"]
    assert record["model_name"] == "test-tiny" and record["config"]["vision_cfg"]["patch_size"] == 32
    inputs = _inputs(2)
    with torch.no_grad():
        assert torch.equal(load_detector(read_checkpoint(out))(inputs), detector(inputs))


def test_saving_over_a_checkpoint_keeps_the_users_files_and_siblings(tiny_checkpoint, tmp_path):
    detector = load_detector(tiny_checkpoint)
    out = save_checkpoint(tmp_path / "model", detector, architecture="test-tiny", base_weights=None)
    (out / "analyst-notes.txt").write_text("mine")
    sibling = tmp_path / "model.old"  # a folder of the user's with the name the old code deleted
    sibling.mkdir()
    (sibling / "keep.txt").write_text("mine too")
    save_checkpoint(out, detector, architecture="test-tiny", base_weights=None, threshold=0.6)
    assert (out / "analyst-notes.txt").read_text() == "mine"
    assert (sibling / "keep.txt").read_text() == "mine too"
    assert read_checkpoint(out).threshold == 0.6
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model.")], "staging folder left behind"


def test_a_file_the_previous_save_wrote_is_removed_when_no_longer_written(small_quickgelu_detector, tmp_path):
    out = save_checkpoint(tmp_path / "m", small_quickgelu_detector, architecture="ViT-S-32", base_weights="openai",
                          bundle_base=True)
    assert (out / BASE_FILE).is_file()
    save_checkpoint(out, small_quickgelu_detector, architecture="ViT-S-32", base_weights="openai")
    assert not (out / BASE_FILE).exists()
    assert BASE_FILE not in read_checkpoint(out).manifest["files"]


def test_a_folder_that_is_not_a_checkpoint_is_never_written_into(tiny_checkpoint, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"not ours")
    with pytest.raises(CheckpointError, match="is not a DGS Desktop checkpoint"):
        save_checkpoint(folder, load_detector(tiny_checkpoint), architecture="test-tiny", base_weights=None)
    assert [p.name for p in folder.iterdir()] == ["holiday.jpg"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]
