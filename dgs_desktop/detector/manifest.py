"""The checkpoint manifest (`dgs_checkpoint.json`): format, validation, hashes. Torch-free.

A checkpoint is a directory: this manifest plus safetensors files, each listed with its sha256.
Reading a checkpoint (`read_checkpoint`) parses and bounds every field the loader acts on and
verifies every file's hash before any tensor is read (a file hashed before and unchanged
since is vouched for by the verify cache, `verified.py`, which says exactly what it trusts);
`checkpoint.load_detector` then builds the network. Nothing here imports torch, so the window, the hub client and the CLI can inspect
checkpoints cheaply.

Layout:
    dgs_checkpoint.json      format version, backbone record, LoRA config, head, preprocessing,
                             threshold, provenance, sha256 of each file
    lora.safetensors         peft LoRA weights of the vision tower
    heads.safetensors        h_img (and, from the trainer, h_text and the teacher probe h_img_T)
    base_visual.safetensors  optional: the frozen vision weights, when bundled
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

from ..errors import CheckpointError
from ..verdict import DEFAULT_THRESHOLD, check_threshold
from .backbone import TEST_TINY
from .verified import VerifyCache

MANIFEST_NAME = "dgs_checkpoint.json"
FORMAT_NAME = "dgs-desktop-checkpoint"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # 1: before the backbone record (rebuilt from the architecture name)
LORA_FILE = "lora.safetensors"
HEADS_FILE = "heads.safetensors"
BASE_FILE = "base_visual.safetensors"
MAX_MANIFEST_BYTES = 1 << 20
MAX_LORA_RANK = 1024
MAX_LORA_ALPHA = 1e4
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+\-]{0,127}$")  # architecture / base weights ids
SHA256 = re.compile(r"^[0-9a-f]{64}$")
WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle", ".safetensors", ".npz", ".tar", ".zip")

NO_MODEL_HELP = (
    "No DGS-Net model is configured. Get one in one of three ways: "
    "(1) import the authors' released weights: dgs-desktop import-weights model_epoch_step2.pth MODEL_DIR; "
    "(2) download a lab's checkpoint from the Hugging Face hub: --checkpoint hf:ORG/NAME[@REVISION]; "
    "(3) train your own: dgs-desktop-train --data TRAIN_ROOT --out MODEL_DIR."
)


LORA_TARGETS = ("q_proj", "k_proj", "v_proj")  # the attention projections LoRA may adapt


@dataclass(frozen=True)
class LoraSettings:
    """LoRA hyper-parameters (paper Sec. 5.1: r=6, alpha=6, dropout=0.8).

    `rslora=True` scales the update by alpha/sqrt(r), as the authors' code does; False gives
    peft's default alpha/r. The choice is recorded in every checkpoint.
    """

    r: int = 6
    alpha: float = 6.0
    dropout: float = 0.8
    rslora: bool = True
    targets: tuple[str, ...] = LORA_TARGETS

    @property
    def scaling(self) -> float:
        return self.alpha / (self.r ** 0.5 if self.rslora else self.r)

    def to_manifest(self) -> dict[str, Any]:
        data = asdict(self)
        data["targets"] = list(self.targets)
        data["scaling_rule"] = "alpha/sqrt(r)" if self.rslora else "alpha/r"
        return data

    @classmethod
    def from_manifest(cls, data: dict[str, Any]) -> LoraSettings:
        return cls(r=int(data["r"]), alpha=float(data["alpha"]), dropout=float(data["dropout"]),
                   rslora=bool(data["rslora"]), targets=tuple(data["targets"]))


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint directory (hashes checked, manifest parsed)."""

    directory: Path
    manifest: dict[str, Any]
    source: str  # what the user named: a path or hf:org/name@rev
    sha256: str  # hash of the manifest, which pins every weight file

    @property
    def architecture(self) -> str:
        return str(self.manifest["architecture"])  # a str: check_manifest refuses anything else

    @property
    def threshold(self) -> float:
        return float(self.manifest.get("threshold", DEFAULT_THRESHOLD))

    @property
    def short_id(self) -> str:
        return f"{self.source}#{self.sha256[:12]}"


def sha256_file(path: Path, chunk: int = 1 << 20, progress: Callable[[int], None] | None = None) -> str:
    """The file's sha256; `progress(n)` is told each `n` bytes read."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
            if progress is not None:
                progress(len(block))
    return digest.hexdigest()


def safe_member(directory: Path, name: str) -> Path:
    """A file name from a manifest, refused if it could point outside the checkpoint."""
    if not isinstance(name, str) or not name or name != os.path.basename(name) or name in (".", "..") \
            or "\\" in name or "\x00" in name:
        raise CheckpointError(f"checkpoint manifest names an unsafe file path: {name!r}")
    return directory / name


def check_output_folder(directory: Path) -> None:
    """Refuses a folder that exists and is not a checkpoint (nothing of the user's is replaced)."""
    if directory.exists() and not (directory / MANIFEST_NAME).is_file() and (
            not directory.is_dir() or any(directory.iterdir())):
        raise CheckpointError(f"{directory} exists and is not a DGS Desktop checkpoint; "
                              "choose a new or empty folder (nothing was overwritten)")


# -------------------------------------------------------------------------------- reading
def check_manifest(manifest: object) -> None:
    """Refuses anything a tampered or foreign manifest could use to mislead the loader: every
    field the loader acts on is type-checked and bounded before a model is built."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise CheckpointError("not a DGS Desktop checkpoint manifest (wrong 'format' field)")
    version = manifest.get("format_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise CheckpointError(f"unsupported checkpoint format version {version!r} "
                              f"(this DGS Desktop reads versions {', '.join(map(str, READABLE_VERSIONS))}); "
                              f"update the app")
    if version >= 2:
        check_backbone_record(manifest.get("backbone"))
    for key in ("architecture", "lora", "files", "base_weights"):
        if key not in manifest:
            raise CheckpointError(f"checkpoint manifest is missing the {key!r} field")
    files = manifest["files"]
    if not isinstance(files, dict):
        raise CheckpointError("checkpoint manifest 'files' must map file names to sha256 hashes")
    for name, digest in files.items():
        if not isinstance(digest, str) or not SHA256.match(digest):
            raise CheckpointError(f"checkpoint manifest gives no valid sha256 for {name!r}")
    for required in (LORA_FILE, HEADS_FILE):
        if required not in files:
            raise CheckpointError(f"checkpoint manifest does not list {required}")
    architecture = manifest["architecture"]
    if not isinstance(architecture, str) or not SAFE_NAME.match(architecture):
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
        if weights_id is not None and (not isinstance(weights_id, str) or not SAFE_NAME.match(weights_id)
                                       or weights_id.lower().endswith(WEIGHT_SUFFIXES)):
            # open_clip would treat a path as a file to torch.load; only named weights are fetched.
            raise CheckpointError(f"checkpoint base weights id {weights_id!r} is not a plain pretrained-weights "
                                  f"name (paths and files are refused)")
    lora = manifest["lora"]
    if not isinstance(lora, dict):
        raise CheckpointError("checkpoint LoRA settings are invalid: 'lora' is not an object")
    r, alpha, dropout = lora.get("r"), lora.get("alpha"), lora.get("dropout")
    if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= MAX_LORA_RANK:
        raise CheckpointError(f"checkpoint LoRA settings are invalid: rank r={r!r} (must be 1..{MAX_LORA_RANK})")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha <= MAX_LORA_ALPHA:
        # A huge alpha overflows the LoRA update to inf in float32: a NaN score, not a verdict.
        raise CheckpointError(f"checkpoint LoRA settings are invalid: alpha={alpha!r} (must be in (0, {MAX_LORA_ALPHA:g}])")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise CheckpointError(f"checkpoint LoRA settings are invalid: dropout={dropout!r}")
    targets = lora.get("targets")
    if not isinstance(targets, list) or not targets or not set(targets) <= set(LORA_TARGETS) \
            or not isinstance(lora.get("rslora"), bool):
        raise CheckpointError(f"checkpoint LoRA settings are invalid: targets {targets!r} / rslora "
                              f"{lora.get('rslora')!r} (targets must be among {list(LORA_TARGETS)})")
    try:
        check_threshold(manifest.get("threshold", DEFAULT_THRESHOLD))
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {exc}") from None


# Bounds on a recorded open_clip configuration: generous for every real CLIP, small enough
# that a tampered manifest cannot make the loader allocate absurd models.
_CONFIG_LIMITS = {"layers": 256, "width": 16384, "heads": 256, "head_width": 4096, "patch_size": 1024,
                  "image_size": 4096, "embed_dim": 16384, "context_length": 4096, "vocab_size": 1_000_000}


def check_backbone_record(record: object) -> None:
    """The manifest's `backbone`: which open_clip model it is and its full configuration
    (including `quick_gelu`), from which alone the loader rebuilds the network."""
    if not isinstance(record, dict) or record.get("library") != "open_clip":
        raise CheckpointError("checkpoint manifest has no valid 'backbone' record (library, model_name, config)")
    name, pretrained, config = record.get("model_name"), record.get("pretrained"), record.get("config")
    if not isinstance(name, str) or not SAFE_NAME.match(name):
        raise CheckpointError(f"checkpoint backbone model name {name!r} is not a plain model name")
    if pretrained is not None and (not isinstance(pretrained, str) or not SAFE_NAME.match(pretrained)
                                   or pretrained.lower().endswith(WEIGHT_SUFFIXES)):
        raise CheckpointError(f"checkpoint backbone weights tag {pretrained!r} is not a plain name")
    if not isinstance(config, dict) or not isinstance(config.get("vision_cfg"), dict) \
            or not isinstance(config.get("text_cfg", {}), dict):
        raise CheckpointError("checkpoint backbone configuration is not an open_clip model configuration")
    if not isinstance(config.get("quick_gelu", False), bool):
        raise CheckpointError("checkpoint backbone configuration: 'quick_gelu' must be true or false")
    _check_config_values(config, "config")


def _check_config_values(value: object, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CheckpointError(f"checkpoint backbone configuration has a non-text key in {where}")
            _check_config_values(item, f"{where}.{key}")
            limit = _CONFIG_LIMITS.get(key)
            if limit is not None and isinstance(item, (int, float)) and not isinstance(item, bool) \
                    and not 0 < item <= limit:
                raise CheckpointError(f"checkpoint backbone configuration {where}.{key}={item!r} is out of range")
    elif isinstance(value, list):
        for item in value:
            _check_config_values(item, where)
    elif value is not None and not isinstance(value, (str, bool, int, float)):
        raise CheckpointError(f"checkpoint backbone configuration {where} holds an unsupported value")
    elif isinstance(value, float) and not math.isfinite(value):
        raise CheckpointError(f"checkpoint backbone configuration {where} is not finite")


def refuse_file(path: Path) -> CheckpointError:
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


def read_checkpoint(directory: str | Path, source: str | None = None, *,
                    verify_cache: VerifyCache | None = None,
                    progress: Callable[[float], None] | None = None) -> Checkpoint:
    """Parses and verifies a checkpoint directory (every file's sha256) without loading a model.

    A file the verify cache vouches for (the same file, unchanged since it was hashed to the
    sha256 the manifest lists: see `verified.py`) is not read again; `verify_cache` defaults
    to the user's. `progress(fraction)` follows the bytes hashed.
    """
    directory = Path(directory)
    manifest_path = directory / MANIFEST_NAME
    if directory.is_file():
        raise refuse_file(directory)
    if not manifest_path.is_file():
        raise CheckpointError(f"{directory} is not a DGS Desktop checkpoint (no {MANIFEST_NAME} in it)")
    try:
        with open(manifest_path, "rb") as handle:
            raw = handle.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise CheckpointError(f"cannot read {manifest_path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise CheckpointError(f"{manifest_path} is too large to be a checkpoint manifest")

    def _no_constants(name: str) -> NoReturn:
        raise ValueError(f"{name} is not allowed in a checkpoint manifest")

    try:
        manifest = json.loads(raw, parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{manifest_path} is not valid JSON: {exc}") from None
    check_manifest(manifest)
    _verify_files(directory, manifest["files"], VerifyCache.default() if verify_cache is None else verify_cache,
                  progress)
    return Checkpoint(directory=directory, manifest=manifest, source=source or str(directory),
                      sha256=hashlib.sha256(raw).hexdigest())


def model_warning(manifest: dict[str, Any]) -> str:
    """Why a model's verdicts mean nothing (a test architecture, random weights), or "".
    The window's banner, `dgs-desktop scan` on stderr and the report's first page say it."""
    base = manifest.get("base_weights") or {}
    if manifest.get("architecture") == TEST_TINY:
        return (f"This model uses the '{TEST_TINY}' test architecture: it is for tests and demos, and its "
                f"verdicts say nothing about the images.")
    if not base.get("bundled") and base.get("id") in (None, "", "random-init"):
        return "This model's backbone has random (untrained) weights: its verdicts say nothing about the images."
    return ""


def _verify_files(directory: Path, files: dict[str, str], cache: VerifyCache,
                  progress: Callable[[float], None] | None) -> None:
    """Every listed file is present and has its listed sha256 (hashed, or vouched for by `cache`)."""
    paths = {}
    for name in files:
        paths[name] = safe_member(directory, name)
        if not paths[name].is_file():
            raise CheckpointError(f"checkpoint file {name} is missing from {directory}")
    to_hash = [name for name, expected in files.items() if not cache.vouches_for(paths[name], expected)]
    total = sum(paths[name].stat().st_size for name in to_hash) or 1
    done = 0

    def read(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(min(1.0, done / total))

    try:
        for name in to_hash:
            try:
                actual = cache.hash_file(paths[name], lambda path: sha256_file(path, progress=read))
            except OSError as exc:
                raise CheckpointError(f"cannot read checkpoint file {name}: {exc.strerror or exc}") from None
            if actual != files[name]:
                raise CheckpointError(f"checkpoint file {name} is corrupt or was modified: sha256 {actual[:16]}… "
                                      f"does not match the manifest's {str(files[name])[:16]}…")
    finally:
        cache.save()
    if progress is not None:
        progress(1.0)
