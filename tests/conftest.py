"""Shared test set-up: headless Qt, no network, tiny models."""

import os

# Must be set before Qt or huggingface_hub are imported anywhere.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A test-tiny checkpoint with non-zero LoRA weights and head (scores vary per image)."""
    import torch

    from dgs_desktop.detector.checkpoint import read_checkpoint, save_checkpoint
    from dgs_desktop.detector.model import build_detector

    detector = build_detector("test-tiny", None)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, param in detector.named_parameters():
            if "lora_B" in name or name.startswith("head."):
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    save_checkpoint(path, detector, architecture="test-tiny", base_weights="random-init",
                    provenance={"purpose": "tests"})
    return read_checkpoint(path)
