"""Before training: every image read once (its sha256; unreadable ones listed and dropped),
and the run's fingerprint (data + settings) that a --resume must match."""

from __future__ import annotations

import hashlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor

from .config import TrainConfig
from .data import drop_unreadable, format_unreadable
from .runtime import Runtime
from .sources import SampleSet

log = logging.getLogger(__name__)


def index_images(dataset: SampleSet, workers: int, runtime: Runtime) -> tuple[SampleSet, list[str]]:
    """Decodes every image once (split over processes): the readable dataset and each image's sha256."""
    from tqdm import tqdm

    from dgs_desktop.scan.decode import DecodeError

    def check(i: int):
        try:
            return i, dataset.samples[i].decode().sha256, None
        except DecodeError as exc:
            return i, None, str(exc)

    dist = runtime.dist
    mine = list(range(dist.rank, len(dataset.samples), dist.world))
    with ThreadPoolExecutor(max(1, workers)) as pool:
        results = list(tqdm(pool.map(check, mine), total=len(mine), desc="reading images", unit="img",
                            disable=not runtime.progress, dynamic_ncols=True))
    merged = [r for part in dist.all_gather_object(results) for r in part]
    shas = {i: sha for i, sha, err in merged if err is None}
    failures = {i: err for i, _, err in merged if err is not None}
    cleaned = drop_unreadable(dataset, failures)
    if failures and dist.is_main:
        log.warning("warning: %d unreadable image(s) skipped:\n%s", len(failures),
                    format_unreadable(cleaned.skipped))
    return cleaned, [shas[i] for i in sorted(shas)]


def run_fingerprint(config: TrainConfig, dataset: SampleSet, shas: list[str]) -> str:
    """sha256 over the settings that matter and every (path, label, content hash)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(config.fingerprint_fields(), sort_keys=True).encode())
    for sample, sha in zip(dataset.samples, shas):
        digest.update(f"{sample.rel}\0{sample.label}\0{sha}\n".encode())
    return digest.hexdigest()
