"""Checkpoint weights: save a detector as safetensors next to its manifest, load it back.

The manifest (format, validation, hashes) lives in `manifest.py`, torch-free; resolving a
user's "path or hf:ORG/NAME" lives in `resolve.py`. Saving never deletes or replaces anything
it did not write: an existing checkpoint folder keeps the user's own files, and only the
files a previous save wrote are swapped for the new ones.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch

from .. import __version__
from ..errors import CheckpointError, one_line
from ..verdict import DEFAULT_THRESHOLD
from .backbone import TEST_TINY, backbone_record
from .manifest import (
    BASE_FILE,
    FORMAT_NAME,
    FORMAT_VERSION,
    HEADS_FILE,
    LORA_FILE,
    MANIFEST_NAME,
    Checkpoint,
    LoraSettings,
    check_output_folder,
    safe_member,
    sha256_file,
)
from .model import DGSDetector, check_same_names, copy_weight, detector_from_record
from .patches import preprocessing_manifest

_T = TypeVar("_T")
OUR_FILES = (MANIFEST_NAME, LORA_FILE, HEADS_FILE, BASE_FILE)


# --------------------------------------------------------------------------------- saving
def save_checkpoint(directory: str | Path, detector: DGSDetector, *, architecture: str,
                    base_weights: str | None, bundle_base: bool = False,
                    threshold: float = DEFAULT_THRESHOLD, provenance: dict[str, Any] | None = None,
                    extra_heads: dict[str, torch.nn.Linear] | None = None) -> Path:
    """Writes a checkpoint directory: the files are written in a fresh temporary sibling, then
    moved in (the manifest last); an existing folder must be empty or a checkpoint."""
    from safetensors.torch import save_file

    directory = Path(directory)
    check_output_folder(directory)
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
        for state in tensors.values():
            for key, tensor in state.items():
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                    raise CheckpointError(f"refusing to save non-finite weights (NaN/inf) in {key}")
        files = {}
        for name, state in tensors.items():
            save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(staging / name))
            files[name] = sha256_file(staging / name)
        record = detector.backbone or backbone_record(architecture, base_weights)
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "architecture": architecture,
            "backbone": record,
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
        _move_into_place(staging, directory, manifest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # the staging folder is ours, created above
        raise
    return directory


def _move_into_place(staging: Path, directory: Path, manifest: dict[str, Any]) -> None:
    """New folder: one rename. Existing checkpoint: our files replace our files, the manifest
    last; files of a previous save that the new one does not write are removed; anything
    else in the folder is left alone."""
    if not directory.exists() or (directory.is_dir() and not any(directory.iterdir())):
        os.replace(staging, directory)
        return
    previous = _previous_files(directory)
    for name in manifest["files"]:
        os.replace(staging / name, directory / name)
    os.replace(staging / MANIFEST_NAME, directory / MANIFEST_NAME)
    for name in previous - set(manifest["files"]):
        (directory / name).unlink(missing_ok=True)
    staging.rmdir()


def _previous_files(directory: Path) -> set[str]:
    """Weight files the existing manifest lists that a save writes (never any other file)."""
    try:
        listed = json.loads((directory / MANIFEST_NAME).read_text()).get("files", {})
    except (OSError, ValueError, AttributeError):
        return set()
    return {name for name in listed if name in OUR_FILES and (directory / name).is_file()} \
        if isinstance(listed, dict) else set()


# -------------------------------------------------------------------------------- loading
# What loading a model goes through, in order; `on_stage(name, fraction)` callbacks name them.
VERIFYING, BUILDING, LOADING, FIRST_FORWARD = LOAD_STAGES = (
    "verifying files", "building the network", "loading weights", "first forward")


class _TensorReader(Protocol):
    """What is read from safetensors' `safe_open` (its stub leaves these methods untyped)."""

    def keys(self) -> list[str]: ...

    def get_tensor(self, name: str) -> torch.Tensor: ...


class TensorFile:
    """A listed safetensors file, memory-mapped: tensors are read one at a time, and a file that
    safetensors cannot read is a `CheckpointError` naming it."""

    def __init__(self, checkpoint: Checkpoint, name: str):
        from safetensors import SafetensorError, safe_open

        if name not in checkpoint.manifest["files"]:
            raise CheckpointError(f"checkpoint file {name} is not listed (with its sha256) in the manifest")
        self.name = name
        self._errors = (SafetensorError, OSError, ValueError, RuntimeError)
        self._handle: _TensorReader = self._guard(lambda: safe_open(str(safe_member(checkpoint.directory, name)), framework="pt"))

    def _guard(self, read: Callable[[], _T]) -> _T:
        try:
            return read()
        except self._errors as exc:
            raise CheckpointError(f"checkpoint file {self.name} is not a readable safetensors file: {exc}") from None

    def keys(self) -> list[str]:
        return self._guard(lambda: [str(k) for k in self._handle.keys()])

    def tensor(self, key: str) -> torch.Tensor:
        """One tensor, refused unless floating point and finite."""
        tensor: torch.Tensor = self._guard(lambda: self._handle.get_tensor(key))
        if not tensor.is_floating_point():
            raise CheckpointError(f"checkpoint file {self.name} holds a non-floating-point tensor {key} "
                                  f"({tensor.dtype})")
        if not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"checkpoint file {self.name} holds non-finite values (NaN/inf) in {key}")
        return tensor


def load_tensors(checkpoint: Checkpoint, name: str) -> dict[str, torch.Tensor]:
    """The tensors of one listed safetensors file; refuses non-float and non-finite values."""
    tensors = TensorFile(checkpoint, name)
    return {key: tensors.tensor(key) for key in tensors.keys()}


def load_head_tensors(checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    return load_tensors(checkpoint, HEADS_FILE)


def _load_bundled_base(detector: DGSDetector, checkpoint: Checkpoint, name: str,
                       progress: Callable[[float], None]) -> None:
    """Copies the bundled vision weights in one tensor at a time (peak memory: the model plus
    one tensor, not the model plus the whole file)."""
    targets = detector.base_visual_tensors()
    tensors = TensorFile(checkpoint, name)
    keys = tensors.keys()
    check_same_names(targets, keys)
    for index, key in enumerate(keys, 1):
        copy_weight(targets[key], tensors.tensor(key), key)
        progress(index / len(keys))


def backbone_of(checkpoint: Checkpoint) -> dict[str, Any]:
    """The backbone record; format-1 checkpoints predate it and get it derived from their
    architecture name and weights id (with QuickGELU where those weights need it)."""
    manifest = checkpoint.manifest
    if "backbone" in manifest:
        record: dict[str, Any] = manifest["backbone"]  # a dict: check_backbone_record refuses anything else
        return record
    arch = manifest["architecture"]
    weights_id = None if arch == TEST_TINY else manifest["base_weights"].get("id")
    return backbone_record(arch, weights_id)


def lora_settings_of(checkpoint: Checkpoint) -> LoraSettings:
    try:
        return LoraSettings.from_manifest(checkpoint.manifest["lora"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint LoRA settings are invalid: {exc}") from None


def no_stages(stage: str, fraction: float) -> None:
    pass


def load_detector(checkpoint: Checkpoint, device: str | torch.device = "cpu",
                  with_text: bool = False, *, on_stage: Callable[[str, float], None] | None = None) -> DGSDetector:
    """Builds the detector a checkpoint describes and loads its weights (eval mode).

    With bundled base weights (and no text tower) the network is built on the meta device and
    every tensor comes from the checkpoint: no random initialisation to throw away. `on_stage`
    hears `BUILDING` and `LOADING` with the fraction done.
    """
    on_stage = on_stage or no_stages
    manifest = checkpoint.manifest
    base = manifest["base_weights"]
    lora = lora_settings_of(checkpoint)
    bundled = bool(base.get("bundled")) or manifest["architecture"] == TEST_TINY
    on_meta = bool(base.get("bundled")) and not with_text
    on_stage(BUILDING, 0.0)
    try:
        detector = detector_from_record(backbone_of(checkpoint), lora, with_text=with_text,
                                        load_pretrained=not bundled, on_meta=on_meta)
        if on_meta:
            detector = _materialise(detector, device)
    except CheckpointError:
        raise
    except (RuntimeError, ValueError, TypeError, KeyError, OSError) as exc:
        raise CheckpointError(f"cannot build the {manifest['architecture']} model this checkpoint describes: "
                              f"{type(exc).__name__}: {one_line(exc)}") from None
    on_stage(BUILDING, 1.0)
    on_stage(LOADING, 0.0)
    try:
        if base.get("bundled"):
            _load_bundled_base(detector, checkpoint, base.get("file") or BASE_FILE,
                               lambda done: on_stage(LOADING, 0.9 * done))
        lora_state = load_tensors(checkpoint, LORA_FILE)
        check_lora_keys(set(detector.lora_state_dict()), lora_state)
        detector.load_lora_state_dict(lora_state)
        heads = load_head_tensors(checkpoint)
        head_state = {"weight": heads.get("h_img.weight"), "bias": heads.get("h_img.bias")}
        for part, param in (("weight", detector.head.weight), ("bias", detector.head.bias)):
            value = head_state[part]
            if value is None or value.shape != param.shape:
                got = None if value is None else tuple(value.shape)
                raise ValueError(f"head h_img.{part} has shape {got}, expected {tuple(param.shape)}")
        detector.head.load_state_dict(head_state)
    except (ValueError, RuntimeError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"checkpoint weights do not fit the {manifest['architecture']} "
                              f"architecture: {one_line(exc)}") from None
    check_finite_scores(detector)
    on_stage(LOADING, 1.0)
    return detector.to(device).eval()


def _materialise(detector: DGSDetector, device: str | torch.device) -> DGSDetector:
    """Gives a meta-device detector uninitialised memory on `device`; the loader then fills
    every tensor (base, LoRA and head names are each checked complete). A buffer outside the
    state dict would have no value to load, so it is refused."""
    saved = set(detector.state_dict())
    unsaved = [name for name, _ in detector.named_buffers() if name not in saved]
    if unsaved:
        raise ValueError(f"buffer {unsaved[0]} is not saved in checkpoints")
    return detector.to_empty(device=device)


def check_lora_keys(expected: set[str], state: dict[str, Any]) -> None:
    """The LoRA file names exactly the factors the architecture adapts: a missing one would
    silently keep a zero update (peft's initial value), an extra one belongs to another model."""
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing:
        raise ValueError(f"LoRA weights are missing for {len(missing)} tensors (e.g. {missing[0]})")
    if unexpected:
        raise ValueError(f"LoRA weights do not match the architecture: unexpected keys {unexpected[:3]}")


def check_finite_scores(detector: DGSDetector) -> None:
    """Refuses weights that are finite but cannot give a finite score: an empty LoRA weight,
    a LoRA update scale * B A that overflows float32, a head that overflows any logit."""
    modules = dict(detector.visual.named_modules())
    for name, module in modules.items():
        lora_a, lora_b = getattr(module, "lora_A", None), getattr(module, "lora_B", None)
        if not isinstance(lora_a, torch.nn.ModuleDict) or not isinstance(lora_b, torch.nn.ModuleDict) \
                or "default" not in lora_a:
            continue
        a, b = lora_a["default"].get_parameter("weight"), lora_b["default"].get_parameter("weight")
        if not math.prod(a.shape) or not math.prod(b.shape):
            raise CheckpointError(f"LoRA weight of {name} is empty")
        with torch.no_grad():
            delta = (b.float() @ a.float()) * float(module.scaling["default"])
        if not bool(torch.isfinite(delta).all()):
            raise CheckpointError(f"the LoRA update of {name} overflows (scale x B A is not finite); "
                                  f"this checkpoint cannot give a finite score")
    check_finite_head(detector.head)


def check_finite_head(head: torch.nn.Linear) -> None:
    """A head whose weights are finite but so large that a logit overflows gives no score."""
    with torch.no_grad():
        bound = head.weight.float().abs().sum() + head.bias.float().abs().sum()
    if not bool(torch.isfinite(bound)):
        raise CheckpointError("the head h_img has weights so large that its logit overflows; "
                              "this checkpoint cannot give a finite score")
