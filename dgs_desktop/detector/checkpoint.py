"""Checkpoint directories: `dgs_checkpoint.json` + safetensors files (never pickle).

Layout:
    dgs_checkpoint.json    manifest: format version, architecture, base weights, LoRA config,
                           head, preprocessing, threshold, provenance, sha256 of each file
    lora.safetensors       peft LoRA weights of the vision tower
    heads.safetensors      h_img (and, from the trainer, h_text and the teacher probe)
    base_visual.safetensors  optional: the frozen vision weights, when bundled

Loading verifies every hash before any tensor is read and refuses unknown versions, file
names that leave the directory, shape mismatches and non-finite weights.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import __version__
from .backbone import TEST_TINY
from .model import DGSDetector, LoraSettings, build_detector
from .patches import preprocessing_manifest

MANIFEST_NAME = "dgs_checkpoint.json"
FORMAT_NAME = "dgs-desktop-checkpoint"
FORMAT_VERSION = 1
LORA_FILE = "lora.safetensors"
HEADS_FILE = "heads.safetensors"
BASE_FILE = "base_visual.safetensors"
DEFAULT_THRESHOLD = 0.5

NO_MODEL_HELP = (
    "No DGS-Net model is configured. Get one in one of three ways: "
    "(1) import the authors' released weights: dgs-desktop import-weights model_epoch_step2.pth MODEL_DIR; "
    "(2) download a lab's checkpoint from the Hugging Face hub: --checkpoint hf:ORG/NAME[@REVISION]; "
    "(3) train your own: dgs-desktop-train --data TRAIN_ROOT --out MODEL_DIR."
)


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used; the message says why in plain words."""


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint directory (hashes checked, manifest parsed)."""

    directory: Path
    manifest: dict
    source: str  # what the user named: a path or hf:org/name@rev
    sha256: str  # hash of the manifest, which pins every weight file

    @property
    def architecture(self) -> str:
        return self.manifest["architecture"]

    @property
    def threshold(self) -> float:
        return float(self.manifest.get("threshold", DEFAULT_THRESHOLD))

    @property
    def short_id(self) -> str:
        return f"{self.source}#{self.sha256[:12]}"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _safe_member(directory: Path, name: str) -> Path:
    """A file name from a manifest, refused if it could point outside the checkpoint."""
    if not isinstance(name, str) or not name or name != os.path.basename(name) or name in (".", "..") \
            or "\\" in name or "\x00" in name:
        raise CheckpointError(f"checkpoint manifest names an unsafe file path: {name!r}")
    return directory / name


# --------------------------------------------------------------------------------- saving
def save_checkpoint(directory: str | Path, detector: DGSDetector, *, architecture: str,
                    base_weights: str | None, bundle_base: bool = False,
                    threshold: float = DEFAULT_THRESHOLD, provenance: dict | None = None,
                    extra_heads: dict[str, torch.nn.Linear] | None = None) -> Path:
    """Writes a checkpoint directory atomically (a temp dir renamed into place)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        heads = {"h_img.weight": detector.head.weight, "h_img.bias": detector.head.bias}
        for name, head in (extra_heads or {}).items():
            heads[f"{name}.weight"], heads[f"{name}.bias"] = head.weight, head.bias
        tensors = {LORA_FILE: detector.lora_state_dict(),
                   HEADS_FILE: {k: v.detach().float().cpu().contiguous() for k, v in heads.items()}}
        if bundle_base or architecture == TEST_TINY:
            tensors[BASE_FILE] = detector.base_visual_state_dict()
        files = {}
        for name, state in tensors.items():
            save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(staging / name))
            files[name] = sha256_file(staging / name)
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "architecture": architecture,
            "base_weights": {"id": base_weights, "bundled": BASE_FILE in files,
                             "file": BASE_FILE if BASE_FILE in files else None},
            "embed_dim": detector.embed_dim,
            "lora": detector.lora.to_manifest(),
            "head": {"type": "linear", "in_features": detector.embed_dim, "out_features": 1,
                     "input": "unnormalised projected image embedding", "output": "logit (sigmoid = P(fake))",
                     "heads": sorted({k.rsplit(".", 1)[0] for k in heads})},
            "preprocessing": preprocessing_manifest(),
            "threshold": float(threshold),
            "provenance": {"dgs_desktop_version": __version__, "torch_version": torch.__version__,
                           **(provenance or {})},
            "files": files,
        }
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if directory.exists():
            backup = directory.with_name(directory.name + ".old")
            shutil.rmtree(backup, ignore_errors=True)
            directory.rename(backup)
            staging.rename(directory)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


# -------------------------------------------------------------------------------- reading
def _check_manifest(manifest) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise CheckpointError("not a DGS Desktop checkpoint manifest (wrong 'format' field)")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"unsupported checkpoint format version {version!r} "
                              f"(this DGS Desktop reads version {FORMAT_VERSION}); update the app")
    for key in ("architecture", "lora", "files", "base_weights"):
        if key not in manifest:
            raise CheckpointError(f"checkpoint manifest is missing the {key!r} field")
    for required in (LORA_FILE, HEADS_FILE):
        if required not in manifest["files"]:
            raise CheckpointError(f"checkpoint manifest does not list {required}")
    threshold = manifest.get("threshold", DEFAULT_THRESHOLD)
    if not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise CheckpointError(f"checkpoint threshold {threshold!r} is not a probability")


def read_checkpoint(directory: str | Path, source: str | None = None) -> Checkpoint:
    """Parses and verifies a checkpoint directory (every file's sha256) without loading a model."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST_NAME
    if directory.is_file() and directory.suffix in (".pth", ".pt", ".bin", ".ckpt"):
        raise CheckpointError(f"{directory} is a raw PyTorch file, not a checkpoint directory; convert the "
                              f"authors' weights first: dgs-desktop import-weights {directory} MODEL_DIR")
    if not manifest_path.is_file():
        raise CheckpointError(f"{directory} is not a DGS Desktop checkpoint (no {MANIFEST_NAME} in it)")
    raw = manifest_path.read_bytes()
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{manifest_path} is not valid JSON: {exc}") from None
    _check_manifest(manifest)
    for name, expected in manifest["files"].items():
        path = _safe_member(directory, name)
        if not path.is_file():
            raise CheckpointError(f"checkpoint file {name} is missing from {directory}")
        actual = sha256_file(path)
        if actual != expected:
            raise CheckpointError(f"checkpoint file {name} is corrupt or was modified: sha256 {actual[:16]}… "
                                  f"does not match the manifest's {str(expected)[:16]}…")
    return Checkpoint(directory=directory, manifest=manifest, source=source or str(directory),
                      sha256=hashlib.sha256(raw).hexdigest())


def _load_tensors(checkpoint: Checkpoint, name: str) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(_safe_member(checkpoint.directory, name)))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"checkpoint file {name} is not a readable safetensors file: {exc}") from None
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"checkpoint file {name} holds non-finite values (NaN/inf) in {key}")
    return tensors


def load_head_tensors(checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    return _load_tensors(checkpoint, HEADS_FILE)


def load_detector(checkpoint: Checkpoint, device: str | torch.device = "cpu",
                  with_text: bool = False) -> DGSDetector:
    """Builds the detector a checkpoint describes and loads its weights (eval mode)."""
    from .backbone import BackboneError

    manifest = checkpoint.manifest
    base = manifest["base_weights"]
    try:
        lora = LoraSettings.from_manifest(manifest["lora"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint LoRA settings are invalid: {exc}") from None
    pretrained = None if base.get("bundled") or manifest["architecture"] == TEST_TINY else base.get("id")
    try:
        detector = build_detector(manifest["architecture"], pretrained, lora, with_text=with_text)
    except BackboneError as exc:
        raise CheckpointError(str(exc)) from None
    try:
        if base.get("bundled"):
            detector.load_base_visual_state_dict(_load_tensors(checkpoint, base.get("file") or BASE_FILE))
        detector.load_lora_state_dict(_load_tensors(checkpoint, LORA_FILE))
        heads = load_head_tensors(checkpoint)
        head_state = {"weight": heads.get("h_img.weight"), "bias": heads.get("h_img.bias")}
        if head_state["weight"] is None or head_state["weight"].shape != detector.head.weight.shape:
            got = None if head_state["weight"] is None else tuple(head_state["weight"].shape)
            raise ValueError(f"head h_img has shape {got}, expected {tuple(detector.head.weight.shape)}")
        detector.head.load_state_dict(head_state)
    except (ValueError, RuntimeError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"checkpoint weights do not fit the {manifest['architecture']} "
                              f"architecture: {exc}") from None
    _check_lora_shapes(detector)
    return detector.to(device).eval()


def _check_lora_shapes(detector: DGSDetector) -> None:
    for name, param in detector.named_parameters():
        if "lora_" in name and not math.prod(param.shape):
            raise CheckpointError(f"LoRA weight {name} is empty")


def resolve_checkpoint(spec: str | Path, progress=None) -> Checkpoint:
    """A checkpoint from a directory path or `hf:org/name[@revision]` (downloaded and cached)."""
    text = str(spec)
    if text.startswith("hf:"):
        from .hub import download_checkpoint

        return download_checkpoint(text, progress=progress)
    path = Path(text).expanduser()
    if not path.exists():
        raise CheckpointError(f"checkpoint {text} does not exist")
    return read_checkpoint(path, source=str(path))
