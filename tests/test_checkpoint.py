"""Checkpoint round trip and hash verification."""

import json
import shutil

import numpy as np
import pytest
import torch

from dgs_desktop.detector.checkpoint import load_detector, save_checkpoint
from dgs_desktop.detector.manifest import HEADS_FILE, MANIFEST_NAME, read_checkpoint
from dgs_desktop.detector.patches import mosaics_to_tensor, select_patches
from dgs_desktop.detector.resolve import resolve_checkpoint
from dgs_desktop.errors import CheckpointError


def _inputs():
    rng = np.random.default_rng(3)
    return mosaics_to_tensor([select_patches(rng.integers(0, 256, (200, 260, 3), dtype=np.uint8)).mosaic
                              for _ in range(4)])


def test_round_trip_gives_identical_probabilities(tiny_checkpoint, tmp_path):
    detector = load_detector(tiny_checkpoint)
    inputs = _inputs()
    with torch.no_grad():
        before = torch.sigmoid(detector(inputs))
    assert before.std() > 1e-4  # the fixture's LoRA and head really change the scores
    copy = save_checkpoint(tmp_path / "copy", detector, architecture="test-tiny", base_weights="random-init",
                           threshold=0.7, provenance={"note": "round trip"})
    reloaded = read_checkpoint(copy)
    assert reloaded.threshold == 0.7
    assert reloaded.manifest["lora"]["scaling_rule"] == "alpha/sqrt(r)"
    assert reloaded.manifest["preprocessing"]["mean"] == [0.485, 0.456, 0.406]
    with torch.no_grad():
        after = torch.sigmoid(load_detector(reloaded)(inputs))
    assert torch.equal(before, after)


def test_manifest_lists_sha256_of_every_weight_file(tiny_checkpoint):
    files = tiny_checkpoint.manifest["files"]
    on_disk = {p.name for p in tiny_checkpoint.directory.iterdir()} - {MANIFEST_NAME}
    assert set(files) == on_disk
    assert all(len(digest) == 64 for digest in files.values())


def test_modified_weight_file_is_refused(tiny_checkpoint, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_checkpoint.directory, broken)
    data = bytearray((broken / HEADS_FILE).read_bytes())
    data[-1] ^= 0xFF
    (broken / HEADS_FILE).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"{HEADS_FILE} is corrupt or was modified"):
        read_checkpoint(broken)


def test_saving_over_an_existing_checkpoint_replaces_it_atomically(tiny_checkpoint, tmp_path):
    detector = load_detector(tiny_checkpoint)
    target = tmp_path / "ckpt"
    save_checkpoint(target, detector, architecture="test-tiny", base_weights="x", threshold=0.3)
    save_checkpoint(target, detector, architecture="test-tiny", base_weights="x", threshold=0.4)
    assert read_checkpoint(target).threshold == 0.4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_resolve_explains_missing_and_raw_pth(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        resolve_checkpoint(tmp_path / "nope")
    raw = tmp_path / "model_epoch_step2.pth"
    raw.write_bytes(b"not really")
    with pytest.raises(CheckpointError, match="import-weights"):
        resolve_checkpoint(raw)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no dgs_checkpoint.json"):
        resolve_checkpoint(tmp_path / "empty")


def test_manifest_is_plain_json(tiny_checkpoint):
    manifest = json.loads((tiny_checkpoint.directory / MANIFEST_NAME).read_text())
    assert manifest["architecture"] == "test-tiny" and manifest["base_weights"]["bundled"] is True


def test_saving_never_overwrites_a_folder_that_is_not_a_checkpoint(tiny_checkpoint, tmp_path):
    documents = tmp_path / "Documents"
    documents.mkdir()
    (documents / "letter.txt").write_text("precious")
    with pytest.raises(CheckpointError, match="not a DGS Desktop checkpoint"):
        save_checkpoint(documents, load_detector(tiny_checkpoint), architecture="test-tiny", base_weights="x")
    assert (documents / "letter.txt").read_text() == "precious"


def test_openai_weights_get_quickgelu(monkeypatch):
    import open_clip

    from dgs_desktop.detector import backbone

    calls = {}

    def fake_create_model(name, pretrained=None, **kwargs):
        calls.update(kwargs, name=name, pretrained=pretrained)
        return backbone.build_clip("test-tiny")

    monkeypatch.setattr(open_clip, "create_model", fake_create_model)
    backbone.build_clip("ViT-L-14", "openai")
    assert calls["force_quick_gelu"] is True and calls["pretrained"] == "openai"
