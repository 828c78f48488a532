"""What a user names as a model: a checkpoint folder on disk, or `hf:ORG/NAME[@REVISION]`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import CheckpointError
from .hub import ProgressFn, download_checkpoint
from .hubaccess import is_hub_checkpoint
from .manifest import Checkpoint, read_checkpoint


def resolve_checkpoint(spec: str | Path, progress: ProgressFn | None = None,
                       verify_progress: Callable[[float], None] | None = None) -> Checkpoint:
    """A verified checkpoint from a directory path or `hf:org/name[@revision]` (downloaded and
    cached by huggingface_hub); `verify_progress(fraction)` follows a folder's hashing."""
    text = str(spec)
    if is_hub_checkpoint(text):
        return download_checkpoint(text, progress=progress)
    path = Path(text).expanduser()
    if not path.exists():
        raise CheckpointError(f"checkpoint {text} does not exist")
    return read_checkpoint(path, source=str(path), progress=verify_progress)
