"""`hf-dataset:ORG/NAME[@REVISION]`: the shards of one split of a hub dataset.

Downloaded with huggingface_hub into its shared cache (resumable; `HF_HUB_OFFLINE=1`, or a hub
that cannot be reached, uses the cache); only the split's shards are fetched.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from pathlib import Path

from dgs_desktop.detector.hubaccess import (
    DATASET_SCHEME,
    RepoSpec,
    hub_error_message,
    is_offline,
    network_errors,
    parse_repo_spec,
)
from dgs_desktop.errors import one_line

from ..errors import TrainError
from .parquet import read_card, read_parquet
from .sample import DataOptions, SampleSet
from .splits import select_split, split_patterns

log = logging.getLogger(__name__)


def parse_hub_dataset(spec: str) -> tuple[str, str | None]:
    """`hf-dataset:org/name[@revision]` -> (`org/name`, revision or None)."""
    ref = parse_repo_spec(spec, DATASET_SCHEME, TrainError)
    return ref.repo_id, ref.revision
def _locate_split(hub, kwargs: dict, split: str | None, offline: bool,
                  what: RepoSpec) -> tuple[Path, list[str], str | None]:
    """(snapshot folder, the split's files, the split) from the hub, or from the cache only."""
    if offline:
        # Only what is on disk; the shards of the split are then checked against the cached
        # file listing, so a half-downloaded split is refused rather than silently used.
        snapshot = Path(hub.snapshot_download(**kwargs, local_files_only=True, allow_patterns=["README.md"]))
        names = [p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()]
    else:
        info = hub.HfApi().dataset_info(kwargs["repo_id"], revision=kwargs["revision"])
        names = [s.rfilename for s in info.siblings or []]
    card = {}
    if "README.md" in names:
        card = read_card(Path(hub.hf_hub_download(filename="README.md", local_files_only=offline, **kwargs)))
    try:
        files, chosen = select_split(names, split, card)
    except TrainError:
        if not offline or split is None:
            raise
        raise TrainError(f"split {split!r} of {what} is not in the local cache; download it once with the hub "
                         f"reachable and without HF_HUB_OFFLINE") from None
    patterns = split_patterns(card, chosen) if (offline and chosen) else files
    snapshot = Path(hub.snapshot_download(**kwargs, local_files_only=offline, allow_patterns=patterns + ["README.md"]))
    if offline:
        files = sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*.parquet")
                       if any(fnmatch.fnmatch(p.relative_to(snapshot).as_posix(), pat) for pat in patterns))
    return snapshot, files, chosen


def download_split(repo_id: str, revision: str | None, split: str | None, *,
                   cache_dir: str | os.PathLike | None = None) -> tuple[Path, list[Path], dict]:
    """Downloads (or finds in the hub cache) the card and the shards of one split of a dataset.

    Only the split's shards are fetched; huggingface_hub resumes interrupted files and shows
    progress; with HF_HUB_OFFLINE=1, or when the hub cannot be reached, only the cache is used.
    """
    import huggingface_hub
    from huggingface_hub import constants

    what = RepoSpec(DATASET_SCHEME, repo_id, revision)
    offline = is_offline()
    kwargs = dict(repo_id=repo_id, repo_type="dataset", revision=revision,
                  cache_dir=str(cache_dir) if cache_dir else None)
    try:
        try:
            snapshot, files, chosen = _locate_split(huggingface_hub, kwargs, split, offline, what)
        except network_errors() as exc:
            if offline:
                raise
            log.warning("the hub at %s cannot be reached (%s); using the local cache", constants.ENDPOINT,
                        type(exc).__name__)
            snapshot, files, chosen = _locate_split(huggingface_hub, kwargs, split, True, what)
    except TrainError:
        raise
    except Exception as exc:  # noqa: BLE001 - network, disk and client errors: one line, never a traceback
        message = hub_error_message(exc, what, offline=offline, endpoint=constants.ENDPOINT)
        raise TrainError(message or f"{what}: download failed ({type(exc).__name__}: {one_line(exc)}); run the "
                                    f"command again to resume") from None
    missing = [f for f in files if not (snapshot / f).is_file()]
    if missing:
        raise TrainError(f"{what}: {len(missing)} shard(s) of split {chosen!r} are not in the cache (e.g. "
                         f"{missing[0]}); run the command again with the hub reachable")
    info = {"kind": "hf-dataset", "repo": repo_id, "revision": revision, "commit": snapshot.name, "split": chosen,
            "files": files}
    return snapshot, [snapshot / f for f in files], info


def open_hub_dataset(spec: str, options: DataOptions, *, cache_dir: str | os.PathLike | None = None) -> SampleSet:
    """`hf-dataset:ORG/NAME[@REVISION]` as a source: one split, downloaded or from the cache."""
    repo_id, revision = parse_hub_dataset(spec)
    snapshot, files, info = download_split(repo_id, revision, options.split, cache_dir=cache_dir)
    result = read_parquet(files, options, root=snapshot, readme=snapshot / "README.md",
                          description=f"{RepoSpec(DATASET_SCHEME, repo_id, info['commit'][:12])} split={info['split']}")
    result.provenance.update(info)
    return result
