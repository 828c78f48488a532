"""Everything that reaches the Hugging Face hub shares these rules (GUI-free).

- the grammar of what a user names: `hf:ORG/NAME[@REVISION]` (a checkpoint) and
  `hf-dataset:ORG/NAME[@REVISION]` (a dataset);
- whether huggingface_hub is in offline mode (`HF_HUB_OFFLINE=1`, read when it is first imported);
- which exceptions mean the hub could not be reached (huggingface_hub's HTTP client varies by release);
- the one-line wording of the failures every hub access meets (not in the cache, not found, ...).

Checkpoint downloads (`hub`), model cards (`modelcard`), hub datasets (`trainer.sources`) and
publishing (`trainer.publish`) use these; huggingface_hub is imported only when needed.
"""

from __future__ import annotations

import functools
import importlib
import os
from dataclasses import dataclass

from ..errors import CheckpointError, DGSError, one_line

CHECKPOINT_SCHEME = "hf:"
DATASET_SCHEME = "hf-dataset:"
_KIND = {CHECKPOINT_SCHEME: "hub checkpoint", DATASET_SCHEME: "hub dataset"}
# Connection failures of the HTTP clients huggingface_hub has used (httpx2, httpx, requests).
_CLIENT_NETWORK_ERRORS = {"httpx2": ("TransportError",), "httpx": ("TransportError",),
                          "requests": ("ConnectionError", "Timeout")}


@dataclass(frozen=True)
class RepoSpec:
    """A hub repository as the user names it: scheme, `org/name` and a revision (None: default branch)."""

    scheme: str
    repo_id: str
    revision: str | None = None

    @property
    def repo_type(self) -> str:
        """huggingface_hub's `repo_type`."""
        return "dataset" if self.scheme == DATASET_SCHEME else "model"

    def __str__(self) -> str:
        return f"{self.scheme}{self.repo_id}" + (f"@{self.revision}" if self.revision else "")


def is_hub_checkpoint(spec: str) -> bool:
    """`hf:ORG/NAME[@REVISION]` (a hub checkpoint), not a folder on disk."""
    return str(spec).strip().startswith(CHECKPOINT_SCHEME)


def checkpoint_name(spec: str) -> str:
    """A checkpoint's short name for tables: the hub spec as given, or the folder's name."""
    if not spec or is_hub_checkpoint(spec):
        return spec
    return os.path.basename(os.path.normpath(spec)) or spec


def repo_id_problem(repo_id: str) -> str | None:
    """Why `repo_id` is not a hub repository `ORG/NAME` (None when it is)."""
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except ValueError as exc:
        return one_line(exc)
    return None if repo_id.count("/") == 1 else "it must be ORG/NAME"


def parse_repo_spec(spec: str, scheme: str = CHECKPOINT_SCHEME,
                    error: type[DGSError] = CheckpointError) -> RepoSpec:
    """`SCHEME ORG/NAME[@REVISION]` -> RepoSpec; anything else raises `error` with the form to write."""
    text = str(spec).strip()
    kind = _KIND[scheme]
    if not text.startswith(scheme):
        raise error(f"{spec!r} is not a {kind}; write it as {scheme}ORG/NAME[@REVISION]")
    repo_id, sep, revision = text[len(scheme):].partition("@")
    repo_id = repo_id.strip().strip("/")
    if sep and not revision.strip():
        raise error(f"{spec!r} has an empty revision after '@'; write {scheme}ORG/NAME@REVISION")
    problem = repo_id_problem(repo_id)
    if problem:
        raise error(f"{spec!r} is not a valid {kind} name ({problem}); write it as {scheme}ORG/NAME[@REVISION]")
    return RepoSpec(scheme, repo_id, revision.strip() or None)


def is_offline() -> bool:
    """huggingface_hub's offline mode (`is_offline_mode()` where the release has it)."""
    from huggingface_hub import constants

    return bool(constants.is_offline_mode() if hasattr(constants, "is_offline_mode") else constants.HF_HUB_OFFLINE)


@functools.cache
def network_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean the hub could not be reached (no network, closed port, DNS, timeout)."""
    found: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module_name, names in _CLIENT_NETWORK_ERRORS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        found += [error for error in (getattr(module, name, None) for name in names)
                  if isinstance(error, type) and issubclass(error, BaseException)]
    return tuple(found)


def not_cached_message(what: RepoSpec, *, offline: bool, endpoint: str, filename: str | None = None) -> str:
    """`what` (or its `filename`) is needed, is not in the cache, and cannot be downloaded now."""
    item = f"{what} ({filename})" if filename else str(what)
    if offline:
        return (f"{item} is not in the local cache and offline mode is on (HF_HUB_OFFLINE=1); connect once "
                f"without HF_HUB_OFFLINE to download it")
    return (f"cannot reach the Hugging Face hub at {endpoint} and {item} is not in the local cache; check the "
            f"network connection (or HF_ENDPOINT): while the hub cannot be reached, only what is in the local "
            f"cache can be used")


def hub_error_message(exc: BaseException, what: RepoSpec, *, offline: bool, endpoint: str,
                      filename: str | None = None) -> str | None:
    """The line for a huggingface_hub error any download meets; None for the caller's own cases."""
    from huggingface_hub import errors

    noun = "dataset" if what.repo_type == "dataset" else "repository"
    if isinstance(exc, (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled)):
        return not_cached_message(what, offline=offline, endpoint=endpoint, filename=filename)
    if isinstance(exc, errors.GatedRepoError):
        return f"{what} is a gated {noun}: accept its terms on the hub and log in (hf auth login or HF_TOKEN)"
    if isinstance(exc, errors.RepositoryNotFoundError):
        return (f"{what}: {noun} not found on {endpoint} (check the name; a private {noun} needs a token: "
                f"hf auth login or HF_TOKEN)")
    if isinstance(exc, errors.RevisionNotFoundError):
        return f"{what}: revision not found (check the branch, tag or commit)"
    if isinstance(exc, errors.HfHubHTTPError) and not isinstance(exc, errors.EntryNotFoundError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        item = f"{what} ({filename})" if filename else str(what)
        return f"the hub at {endpoint} answered HTTP {status} for {item}; try again later"
    return None
