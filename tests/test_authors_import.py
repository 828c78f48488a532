"""Import of the authors' `model_epoch_step2.pth` layout (built here from test-tiny weights)."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from torch import nn

from dgs_desktop.detector.authors import import_authors_weights
from dgs_desktop.detector.checkpoint import load_detector, load_head_tensors
from dgs_desktop.detector.manifest import read_checkpoint
from dgs_desktop.detector.scorer import load_scorer
from dgs_desktop.errors import CheckpointError

RANK = 4  # not 6, so alpha/sqrt(r) and alpha/r differ clearly
ALPHA = 6.0  # the authors' default


def _tiny_clip():
    """An open_clip test-tiny CLIP with nn.MultiheadAttention (OpenAI key names), random weights."""
    import open_clip

    from dgs_desktop.detector.backbone import _TEST_TINY_CFG

    torch.manual_seed(1234)
    model = open_clip.model.CLIP(**_TEST_TINY_CFG).eval()
    generator = torch.Generator().manual_seed(99)
    with torch.no_grad():  # differ from test-tiny's own init, so the bundled weights must come from the file
        for param in model.visual.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.02)
    return model


def _fake_authors_file(path, *, merged: bool, alpha: float = ALPHA, out_lora: bool = False,
                       drop: tuple[str, ...] = ()):
    """Writes a state dict with the authors' key layout; returns what a direct computation needs."""
    clip = _tiny_clip()
    width = clip.visual.conv1.weight.shape[0]
    scale = alpha / math.sqrt(RANK)
    generator = torch.Generator().manual_seed(5 if merged else 6)
    full = clip.state_dict()
    state = {}
    # the frozen copy: the whole CLIP, packed attention, exactly the pre-trained weights
    for key, value in full.items():
        state["clip_model_frozen.clip_model_frozen." + key] = value.clone()
    lora = {}
    effective = {}
    for key, value in full.items():
        if not key.startswith("visual.") or ".attn." not in key:
            state["clip_model." + key] = value.clone()
    for i, block in enumerate(clip.visual.transformer.resblocks):
        pre = f"clip_model.visual.transformer.resblocks.{i}.attn."
        weights = block.attn.in_proj_weight.detach().chunk(3)
        biases = block.attn.in_proj_bias.detach().chunk(3)
        for t, w, b in zip("qkv", weights, biases):
            a_mat = torch.randn(RANK, width, generator=generator) * 0.2
            b_mat = torch.randn(width, RANK, generator=generator) * 0.2
            lora[(i, t)] = (a_mat, b_mat)
            effective[(i, t)] = w + scale * b_mat @ a_mat
            state[pre + f"{t}_proj.weight"] = (effective[(i, t)] if merged else w).clone()
            state[pre + f"{t}_proj.bias"] = b.clone()
            state[pre + f"{t}_proj.w_lora_A"] = a_mat
            state[pre + f"{t}_proj.w_lora_B"] = b_mat
        state[pre + "proj.weight"] = block.attn.out_proj.weight.detach().clone()
        state[pre + "proj.bias"] = block.attn.out_proj.bias.detach().clone()
        if out_lora:
            state[pre + "proj.w_lora_A"] = torch.zeros(RANK, width)
            state[pre + "proj.w_lora_B"] = torch.zeros(width, RANK)
    embed = clip.visual.output_dim
    heads = {name: nn.Linear(embed, 1) for name in ("img_fc", "text_fc", "clip_model_frozen.img_frozen_fc")}
    with torch.no_grad():
        for name, head in heads.items():
            head.weight.copy_(torch.randn(1, embed, generator=generator))
            head.bias.fill_(0.1)
            state[name + ".weight"] = head.weight.detach().clone()
            state[name + ".bias"] = head.bias.detach().clone()
    for key in drop:
        del state[key]
    torch.save(state, path)
    return clip, effective, heads


def _direct_probabilities(clip, effective, head, images, with_lora: bool = True):
    """sigmoid(h_img(f)) with W + s B A put straight into the packed attention (no peft involved)."""
    import copy

    model = copy.deepcopy(clip)
    if with_lora:
        with torch.no_grad():
            for i, block in enumerate(model.visual.transformer.resblocks):
                block.attn.in_proj_weight.copy_(torch.cat([effective[(i, t)] for t in "qkv"]))
    with torch.no_grad():
        features = model.visual(images)
        return torch.sigmoid(head(features).squeeze(-1)), features


@pytest.fixture(scope="module")
def images():
    return torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("merged", [False, True], ids=["unmerged", "merged"])
def test_import_matches_direct_computation(tmp_path, images, merged):
    pth = tmp_path / "model_epoch_step2.pth"
    clip, effective, heads = _fake_authors_file(pth, merged=merged)
    out = import_authors_weights(pth, tmp_path / "imported")
    checkpoint = read_checkpoint(out)
    manifest = checkpoint.manifest
    assert manifest["architecture"] == "test-tiny"
    assert manifest["base_weights"] == {"id": "authors-bundled", "bundled": True, "file": "base_visual.safetensors"}
    assert manifest["lora"]["r"] == RANK and manifest["lora"]["rslora"] is True
    assert manifest["lora"]["alpha"] == pytest.approx(ALPHA, rel=1e-4)
    assert manifest["provenance"]["merged"] is merged
    assert manifest["provenance"]["imported_from"] == "model_epoch_step2.pth"
    assert len(manifest["provenance"]["sha256"]) == 64
    assert set(manifest["head"]["heads"]) == {"h_img", "h_text", "h_img_T"}

    detector = load_detector(checkpoint)
    with torch.no_grad():
        got = torch.sigmoid(detector(images))
        teacher = detector.teacher_features(images)
    expected, _ = _direct_probabilities(clip, effective, heads["img_fc"], images)
    assert torch.allclose(got, expected, atol=1e-5), (got, expected)
    with torch.no_grad():  # the scan's network (LoRA merged at load) scores the import alike
        assert torch.allclose(torch.sigmoid(load_scorer(checkpoint)(images)), expected, atol=1e-5)
    # B A counted exactly once: without LoRA the scores differ, and the teacher is the frozen copy
    plain, plain_features = _direct_probabilities(clip, effective, heads["img_fc"], images, with_lora=False)
    assert (got - plain).abs().max() > 1e-3
    assert torch.allclose(teacher, plain_features, atol=1e-5)
    extra = load_head_tensors(checkpoint)
    assert torch.equal(extra["h_text.weight"], heads["text_fc"].weight.detach())
    assert torch.equal(extra["h_img_T.weight"], heads["clip_model_frozen.img_frozen_fc"].weight.detach())


def test_merged_file_with_other_alpha_recovers_it(tmp_path, images):
    pth = tmp_path / "step2.pth"
    clip, effective, heads = _fake_authors_file(pth, merged=True, alpha=3.0)
    checkpoint = read_checkpoint(import_authors_weights(pth, tmp_path / "out"))
    assert checkpoint.manifest["lora"]["alpha"] == pytest.approx(3.0, rel=1e-4)
    for load in (load_detector, load_scorer):
        with torch.no_grad():
            got = torch.sigmoid(load(checkpoint)(images))
        assert torch.allclose(got, _direct_probabilities(clip, effective, heads["img_fc"], images)[0], atol=1e-5)


def test_unmerged_alpha_can_be_given(tmp_path, images):
    pth = tmp_path / "step2.pth"
    clip, effective, heads = _fake_authors_file(pth, merged=False, alpha=2.0)
    checkpoint = read_checkpoint(import_authors_weights(pth, tmp_path / "out", lora_alpha=2.0))
    assert "caller" in checkpoint.manifest["provenance"]["lora_alpha_source"]
    for load in (load_detector, load_scorer):
        with torch.no_grad():
            got = torch.sigmoid(load(checkpoint)(images))
        assert torch.allclose(got, _direct_probabilities(clip, effective, heads["img_fc"], images)[0], atol=1e-5)


class _Payload:
    """Unpickling this creates a marker file: what a malicious .pth would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    zipped = tmp_path / "model_epoch_step2.pth"
    torch.save({"clip_model.visual.conv1.weight": torch.zeros(2), "payload": _Payload(marker)}, zipped)
    legacy = tmp_path / "legacy.pth"
    with open(legacy, "wb") as handle:
        pickle.dump({"payload": _Payload(marker)}, handle)
    for path in (zipped, legacy):
        with pytest.raises(CheckpointError) as info:
            import_authors_weights(path, tmp_path / "out")
        assert "refused" in str(info.value) or "cannot read" in str(info.value)
        assert "\n" not in str(info.value)
        assert not marker.exists()
    assert not (tmp_path / "out").exists()
    # the payload is live: an unsafe load would call open() on the marker (read, not executed)
    from pickle_inspect import called_globals

    for path in (zipped, legacy):
        assert {"io.open", "builtins.open"} & called_globals(path)


@pytest.mark.parametrize("case, message", [
    ("list", "does not hold a state dict"),
    ("no_tensors", "does not hold a state dict"),
    ("garbage", "cannot read"),
    ("missing_head", "img_fc.weight"),
    ("missing_block", "missing keys"),
    ("unknown_shape", "unknown backbone shapes"),
    ("stage1", "stage-1"),
    ("out_lora", "output projection"),
    ("no_frozen", "frozen copy"),
])
def test_clear_errors(tmp_path, case, message):
    pth = tmp_path / "x.pth"
    if case == "list":
        torch.save([torch.zeros(3)], pth)
    elif case == "no_tensors":
        torch.save({"epoch": 3, "name": "x"}, pth)
    elif case == "garbage":
        pth.write_bytes(b"not a torch file at all" * 10)
    elif case == "missing_head":
        _fake_authors_file(pth, merged=False, drop=("img_fc.weight",))
    elif case == "missing_block":
        _fake_authors_file(pth, merged=False, drop=("clip_model.visual.transformer.resblocks.1.mlp.c_fc.weight",))
    elif case == "unknown_shape":
        torch.save({"clip_model.visual.conv1.weight": torch.zeros(48, 3, 16, 16),
                    "clip_model.visual.class_embedding": torch.zeros(48),
                    "clip_model.visual.positional_embedding": torch.zeros(197, 48),
                    "clip_model.visual.proj": torch.zeros(48, 16),
                    "clip_model.visual.ln_pre.weight": torch.zeros(48),
                    "clip_model.visual.ln_post.weight": torch.zeros(48),
                    "clip_model.visual.transformer.resblocks.0.mlp.c_fc.weight": torch.zeros(192, 48)}, pth)
    elif case == "stage1":
        torch.save({"clip_model_frozen.visual.conv1.weight": torch.zeros(64, 3, 32, 32),
                    "img_frozen_fc.weight": torch.zeros(1, 32), "img_frozen_fc.bias": torch.zeros(1)}, pth)
    elif case == "out_lora":
        _fake_authors_file(pth, merged=False, out_lora=True)
    elif case == "no_frozen":
        clip_keys = [f"clip_model_frozen.clip_model_frozen.visual.transformer.resblocks.{i}.attn.in_proj_weight"
                     for i in range(2)]
        _fake_authors_file(pth, merged=False, drop=tuple(clip_keys))
    with pytest.raises(CheckpointError) as info:
        import_authors_weights(pth, tmp_path / "out")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_refuses_to_replace_an_unrelated_folder(tmp_path):
    pth = tmp_path / "step2.pth"
    _fake_authors_file(pth, merged=False)
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "thesis.txt").write_text("precious")
    with pytest.raises(CheckpointError, match="not a DGS Desktop checkpoint"):
        import_authors_weights(pth, folder)
    assert (folder / "thesis.txt").read_text() == "precious"
    # an existing checkpoint folder may be replaced
    out = import_authors_weights(pth, tmp_path / "ckpt")
    assert import_authors_weights(pth, out) == out
    read_checkpoint(out)


def test_architecture_from_shapes():
    from dgs_desktop.detector.authors import _arch_facts, _pick_architecture

    large = {"width": 1024, "layers": 24, "patch_size": 14, "image_size": 224, "embed_dim": 768, "mlp_width": 4096}
    assert _arch_facts("ViT-L-14-quickgelu") == large
    assert _pick_architecture(large, None, "x.pth") == "ViT-L-14-quickgelu"
    base = {"width": 768, "layers": 12, "patch_size": 16, "image_size": 224, "embed_dim": 512, "mlp_width": 3072}
    assert _pick_architecture(base, None, "x.pth") == "ViT-B-16-quickgelu"
    with pytest.raises(CheckpointError, match="does not fit"):
        _pick_architecture(base, "ViT-L-14-quickgelu", "x.pth")


def test_import_weights_command_then_scan(tmp_path):
    """`dgs-desktop import-weights FILE OUT_DIR`, then the imported model scans a folder."""
    import csv

    import numpy as np
    from PIL import Image

    from dgs_desktop.cli import main

    pth = tmp_path / "model_epoch_step2.pth"
    _fake_authors_file(pth, merged=False)
    out = tmp_path / "imported"
    assert main(["import-weights", str(pth), str(out)]) == 0
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(3):
        Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(folder / f"{index}.png")
    assert main(["scan", str(folder), "--checkpoint", str(out), "--csv", str(tmp_path / "r.csv"),
                 "--no-progress"]) == 0
    with open(tmp_path / "r.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 and all(row["status"] == "ok" for row in rows)
    assert main(["import-weights", str(tmp_path / "missing.pth"), str(tmp_path / "x")]) == 2


@pytest.mark.parametrize("value, message", [(float("nan"), "non-finite values"), (float("inf"), "non-finite values"),
                                            (3e38, "logit overflows")])
def test_a_head_that_cannot_give_a_finite_score_is_refused_at_import(tmp_path, value, message):
    """Refused by import-weights, not at the first scan (where it would read NaN as 'real')."""
    pth = tmp_path / "x.pth"
    _fake_authors_file(pth, merged=False)
    state = torch.load(pth, weights_only=True)
    state["img_fc.weight"] = torch.full_like(state["img_fc.weight"], value)
    torch.save(state, pth)
    with pytest.raises(CheckpointError, match=message):
        import_authors_weights(pth, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_imported_checkpoint_records_quickgelu_and_reloads_bit_identically(tmp_path, images):
    pth = tmp_path / "x.pth"
    _fake_authors_file(pth, merged=True)
    out = import_authors_weights(pth, tmp_path / "out")
    checkpoint = read_checkpoint(out)
    assert checkpoint.manifest["backbone"]["config"]["quick_gelu"] is True
    first = load_detector(checkpoint)
    again = import_authors_weights(pth, tmp_path / "again")
    with torch.no_grad():
        assert torch.equal(first(images), load_detector(read_checkpoint(again))(images))
