"""Where training and test images come from: one `Sample` for folders and datasets.

A `Sample` is a label (0 real, 1 fake), a subset (what the evaluation table makes a row of),
a category (what `--classes` selects) and an image that is either a file or one row of a
parquet shard. Each kind of source has its module:

- `folders`: a folder tree whose leaves are `0_real/` and `1_fake/` (GenImage's `nature/` and `ai/` too);
- `parquet`: a local folder (or file) of parquet shards, as the Hugging Face hub stores datasets
  (`splits` picks a split's files, `cells` reads the image bytes of a row);
- `hub`: `hf-dataset:ORG/NAME[@REVISION]`, the shards of one split of a hub dataset.

Image bytes from a row go through the same decoder as files (`dgs_desktop.scan.decode.decode_bytes`),
so sha256, notes and errors are the same. `open_source` tells the kinds apart; `groups` makes
the rows of an evaluation table.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from dgs_desktop.detector.hubaccess import DATASET_SCHEME

from ..errors import TrainError
from .cells import RowRef, read_cell
from .folders import CLASS_DIRS, discover, has_class_leaves, open_tree, read_tree
from .groups import EvalGroup, evaluation_groups, shared_real_pool
from .hub import download_split, open_hub_dataset, parse_hub_dataset
from .parquet import open_parquet_file, open_parquet_folder, read_parquet
from .sample import DataOptions, Sample, SampleSet, count_labels, parse_classes
from .splits import available_splits, select_split, split_patterns

__all__ = ["CLASS_DIRS", "DataOptions", "EvalGroup", "RowRef", "Sample", "SampleSet", "available_splits",
           "check_usable", "count_labels", "discover", "download_split", "evaluation_groups", "open_source",
           "parse_classes", "parse_hub_dataset", "read_cell", "read_parquet", "read_tree", "select_split",
           "shared_real_pool", "split_patterns"]


def open_source(spec: str | os.PathLike, options: DataOptions = DataOptions(), *,
                require_both: bool = True, cache_dir: str | os.PathLike | None = None) -> SampleSet:
    """The samples of a folder tree, a parquet folder/file or `hf-dataset:ORG/NAME[@REV]`.

    Raises TrainError (one plain sentence) for anything the user has to fix.
    `require_both`: every subset (for training) must have real and fake images.
    """
    text = os.fspath(spec)
    if text.startswith(DATASET_SCHEME):
        result = open_hub_dataset(text, options, cache_dir=cache_dir)
    else:
        root = Path(os.path.expanduser(text))
        if not root.exists():
            raise TrainError(f"data path {root} does not exist")
        if root.is_file() and root.suffix.lower() == ".parquet":
            result = open_parquet_file(root, options)
        elif not root.is_dir():
            raise TrainError(f"data path {root} is neither a folder nor a .parquet file")
        elif has_class_leaves(root):
            result = open_tree(root, options, require_both)
        else:
            result = open_parquet_folder(root, options)
    if options.classes:
        result.provenance["classes"] = list(options.classes)
    check_usable(result, require_both)
    return result


def check_usable(result: SampleSet, require_both: bool) -> None:
    """Refuses a set with no images, or with one class only where training needs both."""
    if not result.samples:
        raise TrainError(f"no images in {result.description}" + (f" ({len(result.skipped)} row(s) skipped: "
                                                                 f"{result.skipped[0][1]})" if result.skipped else ""))
    if require_both:
        labels = Counter(s.label for s in result.samples)
        if len(labels) < 2:
            have = "real" if 0 in labels else "fake"
            raise TrainError(f"{result.description} has only {have} images; training needs both classes")
