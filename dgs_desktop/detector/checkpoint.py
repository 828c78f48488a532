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
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import __version__
from ..errors import CheckpointError
from ..verdict import DEFAULT_THRESHOLD
from .backbone import TEST_TINY
from .model import LORA_TARGETS, DGSDetector, LoraSettings, build_detector
from .patches import preprocessing_manifest

MANIFEST_NAME = "dgs_checkpoint.json"
FORMAT_NAME = "dgs-desktop-checkpoint"
FORMAT_VERSION = 1
LORA_FILE = "lora.safetensors"
HEADS_FILE = "heads.safetensors"
BASE_FILE = "base_visual.safetensors"
MAX_MANIFEST_BYTES = 1 << 20
MAX_LORA_RANK = 1024
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+\-]{0,127}$")  # architecture / base weights ids
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle", ".safetensors", ".npz", ".tar", ".zip")

NO_MODEL_HELP = (
    "No DGS-Net model is configured. Get one in one of three ways: "
    "(1) import the authors' released weights: dgs-desktop import-weights model_epoch_step2.pth MODEL_DIR; "
    "(2) download a lab's checkpoint from the Hugging Face hub: --checkpoint hf:ORG/NAME[@REVISION]; "
    "(3) train your own: dgs-desktop-train --data TRAIN_ROOT --out MODEL_DIR."
)


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
    if directory.exists() and not (directory / MANIFEST_NAME).is_file() and (
            not directory.is_dir() or any(directory.iterdir())):
        raise CheckpointError(f"{directory} exists and is not a DGS Desktop checkpoint; "
                              "choose a new or empty folder (nothing was overwritten)")
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
    """Refuses anything a tampered or foreign manifest could use to mislead the loader: every
    field the loader acts on is type-checked and bounded before a model is built."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise CheckpointError("not a DGS Desktop checkpoint manifest (wrong 'format' field)")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise CheckpointError(f"unsupported checkpoint format version {version!r} "
                              f"(this DGS Desktop reads version {FORMAT_VERSION}); update the app")
    for key in ("architecture", "lora", "files", "base_weights"):
        if key not in manifest:
            raise CheckpointError(f"checkpoint manifest is missing the {key!r} field")
    files = manifest["files"]
    if not isinstance(files, dict):
        raise CheckpointError("checkpoint manifest 'files' must map file names to sha256 hashes")
    for name, digest in files.items():
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise CheckpointError(f"checkpoint manifest gives no valid sha256 for {name!r}")
    for required in (LORA_FILE, HEADS_FILE):
        if required not in files:
            raise CheckpointError(f"checkpoint manifest does not list {required}")
    architecture = manifest["architecture"]
    if not isinstance(architecture, str) or not _SAFE_NAME.match(architecture):
        # Refuses open_clip's "local-dir:"/"hf-hub:" schemes and paths: an architecture is a name.
        raise CheckpointError(f"checkpoint architecture {architecture!r} is not a plain model name")
    base = manifest["base_weights"]
    if not isinstance(base, dict) or not isinstance(base.get("bundled", False), bool):
        raise CheckpointError("checkpoint manifest 'base_weights' is malformed")
    if base.get("bundled"):
        name = base.get("file") or BASE_FILE
        if name not in files:
            raise CheckpointError(f"checkpoint bundles base weights in {name!r}, but the manifest does not "
                                  f"list that file with a sha256")
    elif architecture != TEST_TINY:
        weights_id = base.get("id")
        if weights_id is not None and (not isinstance(weights_id, str) or not _SAFE_NAME.match(weights_id)
                                       or weights_id.lower().endswith(_WEIGHT_SUFFIXES)):
            # open_clip would treat a path as a file to torch.load; only named weights are fetched.
            raise CheckpointError(f"checkpoint base weights id {weights_id!r} is not a plain pretrained-weights "
                                  f"name (paths and files are refused)")
    lora = manifest["lora"]
    if not isinstance(lora, dict):
        raise CheckpointError("checkpoint LoRA settings are invalid: 'lora' is not an object")
    r, alpha, dropout = lora.get("r"), lora.get("alpha"), lora.get("dropout")
    if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= MAX_LORA_RANK:
        raise CheckpointError(f"checkpoint LoRA settings are invalid: rank r={r!r} (must be 1..{MAX_LORA_RANK})")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha <= 0:
        raise CheckpointError(f"checkpoint LoRA settings are invalid: alpha={alpha!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise CheckpointError(f"checkpoint LoRA settings are invalid: dropout={dropout!r}")
    targets = lora.get("targets")
    if not isinstance(targets, list) or not targets or not set(targets) <= set(LORA_TARGETS) \
            or not isinstance(lora.get("rslora"), bool):
        raise CheckpointError(f"checkpoint LoRA settings are invalid: targets {targets!r} / rslora "
                              f"{lora.get('rslora')!r} (targets must be among {list(LORA_TARGETS)})")
    threshold = manifest.get("threshold", DEFAULT_THRESHOLD)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise CheckpointError(f"checkpoint threshold {threshold!r} is not a probability")


def _refuse_file(path: Path) -> CheckpointError:
    """The message for a file given where a checkpoint directory is expected (never opened by
    pickle: only its first bytes are looked at, to say what it is)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError:
        head = b""
    looks_like_torch = path.suffix.lower() in (".pth", ".pt", ".bin", ".ckpt", ".pkl", ".pickle") or \
        head.startswith(b"PK\x03\x04") or (len(head) > 1 and head[0] == 0x80 and head[1] in range(2, 6))
    if looks_like_torch:
        return CheckpointError(f"{path} is a raw PyTorch/pickle file, not a checkpoint directory; it is never "
                               f"unpickled. Convert the authors' weights first: dgs-desktop import-weights "
                               f"{path} MODEL_DIR")
    return CheckpointError(f"{path} is a file, not a DGS Desktop checkpoint directory")


def read_checkpoint(directory: str | Path, source: str | None = None) -> Checkpoint:
    """Parses and verifies a checkpoint directory (every file's sha256) without loading a model."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST_NAME
    if directory.is_file():
        raise _refuse_file(directory)
    if not manifest_path.is_file():
        raise CheckpointError(f"{directory} is not a DGS Desktop checkpoint (no {MANIFEST_NAME} in it)")
    try:
        with open(manifest_path, "rb") as handle:
            raw = handle.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise CheckpointError(f"cannot read {manifest_path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise CheckpointError(f"{manifest_path} is too large to be a checkpoint manifest")

    def _no_constants(name):
        raise ValueError(f"{name} is not allowed in a checkpoint manifest")

    try:
        manifest = json.loads(raw, parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{manifest_path} is not valid JSON: {exc}") from None
    _check_manifest(manifest)
    for name, expected in manifest["files"].items():
        path = _safe_member(directory, name)
        if not path.is_file():
            raise CheckpointError(f"checkpoint file {name} is missing from {directory}")
        try:
            actual = sha256_file(path)
        except OSError as exc:
            raise CheckpointError(f"cannot read checkpoint file {name}: {exc.strerror or exc}") from None
        if actual != expected:
            raise CheckpointError(f"checkpoint file {name} is corrupt or was modified: sha256 {actual[:16]}… "
                                  f"does not match the manifest's {str(expected)[:16]}…")
    return Checkpoint(directory=directory, manifest=manifest, source=source or str(directory),
                      sha256=hashlib.sha256(raw).hexdigest())


def _load_tensors(checkpoint: Checkpoint, name: str) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if name not in checkpoint.manifest["files"]:
        raise CheckpointError(f"checkpoint file {name} is not listed (with its sha256) in the manifest")
    try:
        tensors = load_file(str(_safe_member(checkpoint.directory, name)))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint file {name} is not a readable safetensors file: {exc}") from None
    for key, tensor in tensors.items():
        if not tensor.is_floating_point():
            raise CheckpointError(f"checkpoint file {name} holds a non-floating-point tensor {key} ({tensor.dtype})")
        if not bool(torch.isfinite(tensor).all()):
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
    except (RuntimeError, ValueError, TypeError, KeyError, OSError) as exc:
        raise CheckpointError(f"cannot build the {manifest['architecture']} model this checkpoint describes: "
                              f"{type(exc).__name__}: {_one_line(exc)}") from None
    try:
        if base.get("bundled"):
            detector.load_base_visual_state_dict(_load_tensors(checkpoint, base.get("file") or BASE_FILE))
        lora_state = _load_tensors(checkpoint, LORA_FILE)
        missing = sorted(set(detector.lora_state_dict()) - set(lora_state))
        if missing:
            # peft would silently keep its initial (zero) update for these layers.
            raise ValueError(f"LoRA weights are missing for {len(missing)} tensors (e.g. {missing[0]})")
        detector.load_lora_state_dict(lora_state)
        heads = load_head_tensors(checkpoint)
        head_state = {"weight": heads.get("h_img.weight"), "bias": heads.get("h_img.bias")}
        for part, param in (("weight", detector.head.weight), ("bias", detector.head.bias)):
            if head_state[part] is None or head_state[part].shape != param.shape:
                got = None if head_state[part] is None else tuple(head_state[part].shape)
                raise ValueError(f"head h_img.{part} has shape {got}, expected {tuple(param.shape)}")
        detector.head.load_state_dict(head_state)
    except (ValueError, RuntimeError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"checkpoint weights do not fit the {manifest['architecture']} "
                              f"architecture: {_one_line(exc)}") from None
    _check_lora_shapes(detector)
    return detector.to(device).eval()


def _one_line(exc: BaseException, limit: int = 300) -> str:
    """torch's load errors span many lines; the user gets one (the first mismatch, shortened)."""
    text = " ".join(str(exc).replace("\t", " ").split())
    for noise in ("Error(s) in loading state_dict for PeftModel: ", "Error(s) in loading state_dict for "):
        text = text.replace(noise, "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
