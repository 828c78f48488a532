"""Where training and test images come from: one sample abstraction for folders and datasets.

A `Sample` is a label (0 real, 1 fake), a subset (what the evaluation table makes a row of),
a category (what `--classes` selects) and an image that is either a file or one row of a
parquet shard. Three sources give samples:

- a folder tree whose leaves are `0_real/` and `1_fake/` (GenImage's `nature/` and `ai/` too),
  read by `trainer.data.discover`: subset = the top-level folder under the root, category =
  the path to the folder that holds the leaves; `--classes car,cat,...` (the authors' option)
  selects categories by that path or its last folder name;
- a local folder (or file) of parquet shards, as the Hugging Face hub stores datasets;
- `hf-dataset:ORG/NAME[@REVISION]`: the shards of one split of a hub dataset, downloaded with
  huggingface_hub into its shared cache (resumable; `HF_HUB_OFFLINE=1` uses the cache).

Columns of a parquet dataset are found from its features (the `huggingface` schema metadata
that `datasets` writes, or `dataset_info` in the README): the image column is the `Image`
feature, the label column the `ClassLabel` whose names are real/fake, the subset column is
`generator`; `--image-column`, `--label-column`, `--subset-column` and `--category-column`
override. Image bytes from a row go through the same decoder as files
(`dgs_desktop.scan.decode.decode_bytes`), so sha256, notes and errors are the same; a row
without a usable label or image is skipped and counted, never fatal.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from dgs_desktop.detector.hubaccess import (
    DATASET_SCHEME,
    RepoSpec,
    hub_error_message,
    is_offline,
    network_errors,
    parse_repo_spec,
)
from dgs_desktop.envknobs import int_knob
from dgs_desktop.errors import one_line
from dgs_desktop.scan.decode import ANALYST, DEFAULT_MAX_PIXELS, DecodedImage, DecodeError, decode_bytes, read_file

from .errors import TrainError

log = logging.getLogger(__name__)

REAL_NAMES = frozenset({"real", "0_real", "nature", "authentic"})
FAKE_NAMES = frozenset({"fake", "1_fake", "ai", "generated", "synthetic", "ai-generated", "ai_generated"})
SUBSET_COLUMNS = ("generator",)
CATEGORY_COLUMNS = ("category", "class")
ROW_GROUP_CACHE_BYTES = int_knob("DGS_ROW_GROUP_CACHE_MB", 256, minimum=0) << 20


# ----------------------------------------------------------------------------- samples
@dataclass(frozen=True)
class RowRef:
    """One image cell of a parquet shard: the file, the image column and where the row is."""

    shard: Path
    column: str
    row_group: int
    row: int  # within the row group


@dataclass(frozen=True)
class Sample:
    label: int  # 0 real, 1 fake
    subset: str
    category: str
    rel: str  # stable id: path relative to the root, or "<shard relative path>#<row>"
    path: Path | None = None  # an image file ...
    cell: RowRef | None = None  # ... or a parquet cell

    @property
    def name(self) -> str:
        """What the user sees for this image (a file path, or shard#row)."""
        return str(self.path) if self.path is not None else self.rel

    def read_bytes(self) -> bytes:
        """The encoded image, read once; raises DecodeError with a plain reason."""
        if self.path is not None:
            return read_file(self.path)
        return read_cell(self.cell)

    def decode(self, max_pixels: int = DEFAULT_MAX_PIXELS, decoding: str = ANALYST) -> DecodedImage:
        """The app's decoder on this image (the scan's `decode_image` for files)."""
        if self.path is not None:
            from dgs_desktop.scan.decode import decode_image

            return decode_image(self.path, max_pixels=max_pixels, decoding=decoding)
        return decode_bytes(self.read_bytes(), max_pixels=max_pixels, decoding=decoding)


@dataclass
class SampleSet:
    """The samples of one source, in a fixed order, and what was left out while listing them."""

    root: Path  # the folder (for a hub dataset: its snapshot in the hub cache)
    description: str  # the folder, or hf-dataset:org/name@commit split=...
    samples: list[Sample]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason): rows without label/image
    provenance: dict = field(default_factory=dict)

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for s in self.samples:
            entry = out.setdefault(s.subset, {"real": 0, "fake": 0})
            entry["fake" if s.label else "real"] += 1
        return dict(sorted(out.items()))


@dataclass(frozen=True)
class DataOptions:
    """How to read a source (the command-line options shared by train and evaluate)."""

    classes: tuple[str, ...] = ()
    split: str | None = None
    image_column: str | None = None
    label_column: str | None = None
    subset_column: str | None = None
    category_column: str | None = None


def parse_classes(text: str | None) -> tuple[str, ...]:
    """`car,cat, chair` -> ('car', 'cat', 'chair')."""
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


# ----------------------------------------------------------------------------- entry point
def open_source(spec: str | os.PathLike, options: DataOptions = DataOptions(), *,
                require_both: bool = True, cache_dir: str | os.PathLike | None = None) -> SampleSet:
    """The samples of a folder tree, a parquet folder/file or `hf-dataset:ORG/NAME[@REV]`.

    Raises TrainError (one plain sentence) for anything the user has to fix.
    `require_both`: every subset (for training) must have real and fake images.
    """
    text = os.fspath(spec)
    if text.startswith(DATASET_SCHEME):
        repo_id, revision = parse_hub_dataset(text)
        snapshot, files, info = download_split(repo_id, revision, options.split, cache_dir=cache_dir)
        result = read_parquet(files, options, root=snapshot, readme=snapshot / "README.md",
                              description=f"{RepoSpec(DATASET_SCHEME, repo_id, info['commit'][:12])} split={info['split']}")
        result.provenance.update(info)
    else:
        root = Path(os.path.expanduser(text))
        if not root.exists():
            raise TrainError(f"data path {root} does not exist")
        if root.is_file() and root.suffix.lower() == ".parquet":
            result = read_parquet([root], options, root=root.parent, readme=None, description=str(root))
            result.provenance.update(kind="parquet", path=str(root.resolve()))
        elif not root.is_dir():
            raise TrainError(f"data path {root} is neither a folder nor a .parquet file")
        elif _has_class_leaves(root):
            if options.split:
                raise TrainError("--split applies to datasets (parquet or hf-dataset:), not to a folder tree")
            result = read_tree(root, options.classes, require_both)
            result.provenance.update(kind="folder", path=str(root.resolve()))
        else:
            shards = sorted(p for p in root.rglob("*.parquet") if p.is_file())
            if not shards:
                raise TrainError(f"{root} has neither 0_real/1_fake (or nature/ai) class folders nor parquet files")
            readme = root / "README.md"
            files, split = select_split([p.relative_to(root).as_posix() for p in shards], options.split,
                                        _read_card(readme) if readme.is_file() else {})
            result = read_parquet([root / f for f in files], options, root=root,
                                  readme=readme if readme.is_file() else None,
                                  description=f"{root}" + (f" split={split}" if split else ""))
            result.provenance.update(kind="parquet", path=str(root.resolve()), split=split, files=files)
    if options.classes:
        result.provenance["classes"] = list(options.classes)
    _check_usable(result, require_both)
    return result


def _check_usable(result: SampleSet, require_both: bool) -> None:
    if not result.samples:
        raise TrainError(f"no images in {result.description}" + (f" ({len(result.skipped)} row(s) skipped: "
                                                                 f"{result.skipped[0][1]})" if result.skipped else ""))
    if require_both:
        labels = Counter(s.label for s in result.samples)
        if len(labels) < 2:
            have = "real" if 0 in labels else "fake"
            raise TrainError(f"{result.description} has only {have} images; training needs both classes")


def load_dataset(spec: str | os.PathLike, options: DataOptions = DataOptions(), *, require_both: bool = True,
                 cache_dir: str | os.PathLike | None = None):
    """`open_source` as the trainer's `Dataset` (rows without label/image listed as unreadable)."""
    from .data import Dataset

    result = open_source(spec, options, require_both=require_both, cache_dir=cache_dir)
    return Dataset(root=result.root, samples=result.samples, unreadable=list(result.skipped),
                   source=result.provenance)


# ----------------------------------------------------------------------------- folder trees
def _has_class_leaves(root: Path) -> bool:
    from .data import CLASS_DIRS

    for _dirpath, dirnames, _ in os.walk(root, followlinks=True):
        if any(d in CLASS_DIRS for d in dirnames):
            return True
    return False


def _category_matches(category: str, classes: tuple[str, ...]) -> bool:
    """A category (the path from the root to the folder holding the class folders) is selected by
    its full path or by its last folder name (`car` selects `car` and `progan/car`)."""
    return category in classes or category.rsplit("/", 1)[-1] in classes


def read_tree(root: Path, classes: tuple[str, ...] = (), require_both: bool = True) -> SampleSet:
    """Every image under a class leaf of `root` (trainer.data.discover), optionally only `classes`."""
    from .data import discover

    tree = discover(root, require_both=require_both)
    samples = tree.samples
    if classes:
        categories = {s.category for s in samples}
        unknown = [c for c in classes if not any(_category_matches(k, (c,)) for k in categories)]
        if unknown:
            raise TrainError(f"--classes {','.join(unknown)}: no such category folder under {root} "
                             f"(there are: {', '.join(sorted(categories))})")
        samples = [s for s in samples if _category_matches(s.category, classes)]
    return SampleSet(root=tree.root, description=str(root), samples=samples)


# ----------------------------------------------------------------------------- parquet
@dataclass
class _Columns:
    image: str
    label: str
    label_names: list[str] | None
    subset: str | None
    subset_names: list[str] | None
    category: str | None
    category_names: list[str] | None


def _read_card(readme: Path) -> dict:
    """The YAML metadata of a dataset card (empty if there is none or it is unreadable)."""
    try:
        from huggingface_hub.repocard import metadata_load

        return metadata_load(readme) or {}
    except Exception as exc:  # noqa: BLE001 - a broken card only loses hints, never the run
        log.warning("ignoring the unreadable metadata of %s: %s", readme, exc)
        return {}


def _features_from_schema(metadata: dict | None) -> dict[str, dict]:
    """{column: {"type": ..., "names": [...]}} from the `huggingface` schema metadata of `datasets`."""
    raw = (metadata or {}).get(b"huggingface")
    if not raw:
        return {}
    try:
        info = json.loads(raw)
    except ValueError:
        return {}
    features = (info.get("info") or {}).get("features") or {}
    out = {}
    for name, feature in features.items() if isinstance(features, dict) else ():
        if isinstance(feature, dict):
            out[name] = {"type": feature.get("_type"), "names": feature.get("names")}
    return out


def _features_from_card(card: dict, config: str | None = None) -> dict[str, dict]:
    """The same from a card's `dataset_info` (one config, or the first / the named one)."""
    info = card.get("dataset_info")
    if isinstance(info, list):
        info = next((i for i in info if i.get("config_name") == (config or "default")), info[0] if info else None)
    if not isinstance(info, dict):
        return {}
    out = {}
    for feature in info.get("features") or []:
        if not isinstance(feature, dict) or "name" not in feature:
            continue
        dtype = feature.get("dtype")
        if dtype == "image":
            out[feature["name"]] = {"type": "Image", "names": None}
        elif isinstance(dtype, dict) and "class_label" in dtype:
            names = (dtype["class_label"] or {}).get("names") or {}
            if isinstance(names, dict):
                names = [names[k] for k in sorted(names, key=lambda k: int(k))]
            out[feature["name"]] = {"type": "ClassLabel", "names": [str(n) for n in names]}
        else:
            out[feature["name"]] = {"type": str(dtype), "names": None}
    return out


def _label_map(names: list[str] | None) -> dict[int, int] | None:
    """ClassLabel index -> 0/1 when every name is a real or fake name."""
    if not names:
        return None
    mapping = {}
    for i, name in enumerate(names):
        key = str(name).strip().lower()
        if key in REAL_NAMES:
            mapping[i] = 0
        elif key in FAKE_NAMES:
            mapping[i] = 1
        else:
            return None
    return mapping if set(mapping.values()) == {0, 1} else None


def _find_columns(schema, features: dict[str, dict], options: DataOptions, where: str) -> _Columns:
    import pyarrow as pa

    names = list(schema.names)

    def need(column: str | None, option: str) -> str | None:
        if column is not None and column not in names:
            raise TrainError(f"{option} {column}: {where} has no such column (columns: {', '.join(names)})")
        return column

    image = need(options.image_column, "--image-column")
    if image is None:
        image = next((n for n in names if (features.get(n) or {}).get("type") == "Image"), None)
    if image is None:
        image = next((n for n in names if pa.types.is_struct(schema.field(n).type)
                      and "bytes" in [f.name for f in schema.field(n).type]), None)
    if image is None:
        image = next((n for n in names if n in ("image", "img") and pa.types.is_binary(schema.field(n).type)), None)
    if image is None:
        raise TrainError(f"cannot tell which column of {where} holds the images; pass --image-column")

    label = need(options.label_column, "--label-column")
    if label is None:
        label = next((n for n in names if _label_map((features.get(n) or {}).get("names"))), None)
    if label is None:
        raise TrainError(f"cannot tell which column of {where} holds real/fake labels (no ClassLabel with the "
                         f"names real and fake); pass --label-column (0 = real, 1 = fake)")

    subset = need(options.subset_column, "--subset-column")
    if subset is None:
        subset = next((n for n in SUBSET_COLUMNS if n in names), None)
    category = need(options.category_column, "--category-column")
    if category is None:
        category = next((n for n in CATEGORY_COLUMNS if n in names), None)

    def class_names(column):
        return (features.get(column) or {}).get("names") if column else None

    return _Columns(image=image, label=label, label_names=class_names(label), subset=subset,
                    subset_names=class_names(subset), category=category, category_names=class_names(category))


def _value_name(value, names: list[str] | None) -> str | None:
    if value is None:
        return None
    if names is not None and isinstance(value, int) and 0 <= value < len(names):
        return str(names[value])
    return str(value)


def _label_of(value, names: list[str] | None) -> int | None:
    """0/1 for a label cell: ClassLabel index mapped by name, a real/fake string, or 0/1 itself."""
    if value is None:
        return None
    mapping = _label_map(names)
    if mapping is not None and isinstance(value, int):
        return mapping.get(value)
    if isinstance(value, str):
        key = value.strip().lower()
        return 0 if key in REAL_NAMES else 1 if key in FAKE_NAMES else None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and value in (0, 1):
        return value  # unnamed labels: the authors' 0_real / 1_fake convention
    return None


def read_parquet(files: list[Path], options: DataOptions, *, root: Path, readme: Path | None,
                 description: str) -> SampleSet:
    """Samples of parquet shards (only the label/subset/category columns are read here)."""
    import pyarrow.parquet as pq

    card = _read_card(readme) if readme is not None and readme.is_file() else {}
    card_features = _features_from_card(card)
    samples: list[Sample] = []
    skipped: list[tuple[str, str]] = []
    columns = None
    real_subsets: set[str] = set()
    categories_seen: set[str] = set()
    for shard in files:
        rel_shard = shard.relative_to(root).as_posix() if shard.is_relative_to(root) else shard.name
        try:
            handle = pq.ParquetFile(shard)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds for a damaged file
            raise TrainError(f"{rel_shard} is not a readable parquet file: {exc}") from None
        features = _features_from_schema(handle.schema_arrow.metadata) or card_features
        if columns is None:
            columns = _find_columns(handle.schema_arrow, features, options, rel_shard)
            log.info("dataset columns: image=%s label=%s subset=%s category=%s", columns.image, columns.label,
                     columns.subset, columns.category)
        wanted = [c for c in dict.fromkeys([columns.label, columns.subset, columns.category]) if c]
        missing = [c for c in wanted + [columns.image] if c not in handle.schema_arrow.names]
        if missing:
            raise TrainError(f"{rel_shard} lacks the column(s) {', '.join(missing)} that the other shards have")
        row_base = 0
        for group in range(handle.metadata.num_row_groups):
            table = handle.read_row_group(group, columns=wanted)
            values = {c: table.column(c).to_pylist() for c in wanted}
            for row in range(table.num_rows):
                rel = f"{rel_shard}#{row_base + row}"
                label = _label_of(values[columns.label][row], columns.label_names)
                if label is None:
                    skipped.append((rel, f"label {values[columns.label][row]!r} is neither real nor fake"))
                    continue
                subset = _value_name(values[columns.subset][row], columns.subset_names) if columns.subset else None
                subset = subset or root.name
                category = (_value_name(values[columns.category][row], columns.category_names)
                            if columns.category else subset) or subset
                if label == 0:
                    real_subsets.add(subset)
                samples.append(Sample(label=label, subset=subset, category=category, rel=rel,
                                      cell=RowRef(shard=shard, column=columns.image, row_group=group, row=row)))
            row_base += table.num_rows
    if options.classes:
        samples, categories_seen = _keep_classes(samples, options.classes, columns)
        unknown = [c for c in options.classes if c not in categories_seen]
        if unknown:
            raise TrainError(f"--classes {','.join(unknown)}: no such category in {description} "
                             f"(there are: {', '.join(sorted(categories_seen)) or 'none'})")
    result = SampleSet(root=root, description=description, samples=samples, skipped=skipped)
    if columns is not None:
        result.provenance["columns"] = {"image": columns.image, "label": columns.label, "subset": columns.subset,
                                        "category": columns.category}
    if skipped:
        log.warning("%d row(s) of %s skipped (no real/fake label), e.g. %s: %s", len(skipped), description,
                    skipped[0][0], skipped[0][1])
    return result


def _keep_classes(samples: list[Sample], classes: tuple[str, ...], columns: _Columns | None):
    """Samples of the given categories; with one shared pool of real images, all real images stay."""
    pool = shared_real_pool(samples)
    categories = {s.category for s in samples}
    if pool and (columns is None or columns.category is None):
        # Categories come from the generator column: real images belong to no generator.
        kept = [s for s in samples if s.category in classes or s.subset in pool]
        log.info("--classes keeps all %d real images (they carry no category of their own)",
                 sum(s.subset in pool for s in samples))
        return kept, categories
    return [s for s in samples if s.category in classes], categories


# ----------------------------------------------------------------------------- reading cells
class _RowGroupCache:
    """Recently read image columns of row groups (per process; threads share it)."""

    def __init__(self, budget: int):
        self.budget = budget
        self.lock = threading.Lock()
        self.items: OrderedDict[tuple, tuple[object, int]] = OrderedDict()
        self.size = 0

    def get(self, ref: RowRef):
        key = (str(ref.shard), ref.column, ref.row_group)
        with self.lock:
            hit = self.items.get(key)
            if hit is not None:
                self.items.move_to_end(key)
                return hit[0]
        cells = _load_cells(ref)
        size = cells.nbytes
        with self.lock:
            if key not in self.items:
                self.items[key] = (cells, size)
                self.size += size
                while self.size > self.budget and len(self.items) > 1:
                    _, (_, dropped) = self.items.popitem(last=False)
                    self.size -= dropped
        return cells


def _load_cells(ref: RowRef):
    """The image column of one row group as an Arrow array of encoded bytes (no Python copies:
    only the row asked for becomes a bytes object)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    column = pq.ParquetFile(ref.shard).read_row_group(ref.row_group, columns=[ref.column]).column(ref.column)
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_struct(column.type):  # datasets' Image feature: {"bytes": ..., "path": ...}
        column = column.field("bytes")
    if not (pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)):
        raise DecodeError(f"column {ref.column!r} holds {column.type}, not encoded image bytes")
    return column


_CACHE = _RowGroupCache(ROW_GROUP_CACHE_BYTES)


def read_cell(ref: RowRef) -> bytes:
    try:
        cells = _CACHE.get(ref)
    except DecodeError:
        raise
    except OSError as exc:
        raise DecodeError(f"cannot read row group {ref.row_group} of {ref.shard.name}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a damaged shard is an unreadable image, never a crash
        raise DecodeError(f"cannot read {ref.shard.name} ({type(exc).__name__}: {exc})") from None
    if not 0 <= ref.row < len(cells):
        raise DecodeError(f"row {ref.row} is missing from row group {ref.row_group} of {ref.shard.name}")
    data = cells[ref.row].as_py()
    if data is None:
        raise DecodeError("the dataset row holds no embedded image bytes")
    return data


# ----------------------------------------------------------------------------- evaluation groups
def shared_real_pool(samples: list[Sample]) -> set[str]:
    """Subsets that hold only real images while every other subset holds only fakes.

    That is how hub datasets with a `generator` column store real images (e.g. `Real`); the
    paper's tables then have one R.Acc column and each generator's F.Acc. Empty when not so.
    """
    kinds: dict[str, set[int]] = {}
    for s in samples:
        kinds.setdefault(s.subset, set()).add(s.label)
    real = {name for name, labels in kinds.items() if labels == {0}}
    fake = {name for name, labels in kinds.items() if labels == {1}}
    return real if real and fake and len(real) + len(fake) == len(kinds) else set()


@dataclass(frozen=True)
class EvalGroup:
    name: str
    indices: tuple[int, ...]  # into the sample list


def evaluation_groups(samples: list[Sample]) -> tuple[list[EvalGroup], str | None]:
    """The rows of an evaluation table and, when real images are shared, the heading's note.

    With a shared real pool every generator's row is its fakes plus all real images, so its
    R.Acc is the one R.Acc column and its AP and Acc use all real images as negatives.
    """
    by_subset: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        by_subset.setdefault(s.subset, []).append(i)
    pool = shared_real_pool(samples)
    if not pool:
        return [EvalGroup(name, tuple(idx)) for name, idx in sorted(by_subset.items())], None
    reals = tuple(i for name in sorted(pool) for i in by_subset[name])
    groups = [EvalGroup(name, tuple(sorted(idx + list(reals)))) for name, idx in sorted(by_subset.items())
              if name not in pool]
    note = (f"every generator's R.Acc, Acc and AP use all {len(reals)} real images "
            f"({', '.join(sorted(pool))}) as negatives")
    return groups, note


# ----------------------------------------------------------------------------- hub datasets
def parse_hub_dataset(spec: str) -> tuple[str, str | None]:
    """`hf-dataset:org/name[@revision]` -> (`org/name`, revision or None)."""
    ref = parse_repo_spec(spec, DATASET_SCHEME, TrainError)
    return ref.repo_id, ref.revision


# File patterns of a split when the card has no `configs` (the `datasets` library's defaults).
_SPLIT_PATTERNS = ("{s}.parquet", "{s}-*.parquet", "{s}_*.parquet", "{s}/*.parquet", "*/{s}.parquet",
                   "*/{s}-*.parquet", "*/{s}_*.parquet", "*/{s}/*.parquet", "*-{s}-*.parquet", "*-{s}.parquet")
_KNOWN_SPLITS = ("train", "validation", "valid", "val", "test", "eval")


def _card_split_patterns(card: dict) -> dict[str, list[str]]:
    """split -> file patterns from the card's `configs` (the default config, or the first one)."""
    configs = card.get("configs")
    if not isinstance(configs, list) or not configs:
        return {}
    config = next((c for c in configs if isinstance(c, dict) and c.get("default")), None) \
        or next((c for c in configs if isinstance(c, dict) and c.get("config_name") == "default"), None) \
        or configs[0]
    data_files = config.get("data_files") if isinstance(config, dict) else None
    if isinstance(data_files, str):
        return {"train": [data_files]}
    out: dict[str, list[str]] = {}
    for entry in data_files or []:
        if isinstance(entry, dict) and "split" in entry:
            paths = entry.get("path")
            out.setdefault(str(entry["split"]), []).extend([paths] if isinstance(paths, str) else list(paths or []))
    return out


def split_patterns(card: dict, split: str) -> list[str]:
    from_card = _card_split_patterns(card)
    if from_card:
        return from_card.get(split, [])
    return [p.format(s=split) for p in _SPLIT_PATTERNS]


def available_splits(names: list[str], card: dict) -> list[str]:
    from_card = _card_split_patterns(card)
    if from_card:
        return sorted(from_card)
    return [s for s in _KNOWN_SPLITS if any(fnmatch.fnmatch(n, p.format(s=s)) for n in names for p in _SPLIT_PATTERNS)]


def select_split(names: list[str], split: str | None, card: dict) -> tuple[list[str], str | None]:
    """The parquet files of `split` (all of them when there is no split to choose)."""
    parquet = sorted(n for n in names if n.endswith(".parquet"))
    splits = available_splits(parquet, card)
    if split is None:
        if len(splits) > 1:
            raise TrainError(f"the dataset has the splits {', '.join(splits)}; choose one with --split")
        split = splits[0] if splits else None
        if split is None:
            return parquet, None
    patterns = split_patterns(card, split)
    chosen = [n for n in parquet if any(fnmatch.fnmatch(n, p) for p in patterns)]
    if not chosen:
        raise TrainError(f"the dataset has no parquet files for split {split!r}"
                         + (f" (splits: {', '.join(splits)})" if splits else ""))
    return chosen, split


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
        card = _read_card(Path(hub.hf_hub_download(filename="README.md", local_files_only=offline, **kwargs)))
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
