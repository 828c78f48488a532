"""Parquet shards, as the Hugging Face hub stores datasets: a local file or folder of them.

Columns are found from the dataset's features (the `huggingface` schema metadata that
`datasets` writes, or `dataset_info` in the README): the image column is the `Image` feature,
the label column the `ClassLabel` whose names are real/fake, the subset column is `generator`;
`--image-column`, `--label-column`, `--subset-column` and `--category-column` override. Only
those columns are read here; the image bytes are read per sample (`cells`). A row without a
usable label is skipped and counted, never fatal.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ..errors import TrainError
from .cells import RowRef
from .groups import shared_real_pool
from .sample import DataOptions, Sample, SampleSet
from .splits import select_split

log = logging.getLogger(__name__)

REAL_NAMES = frozenset({"real", "0_real", "nature", "authentic"})
FAKE_NAMES = frozenset({"fake", "1_fake", "ai", "generated", "synthetic", "ai-generated", "ai_generated"})
SUBSET_COLUMNS = ("generator",)
CATEGORY_COLUMNS = ("category", "class")


@dataclass
class _Columns:
    image: str
    label: str
    label_names: list[str] | None
    subset: str | None
    subset_names: list[str] | None
    category: str | None
    category_names: list[str] | None


def read_card(readme: Path) -> dict:
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
    out: dict[str, dict] = {}
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

    card = read_card(readme) if readme is not None and readme.is_file() else {}
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


def open_parquet_file(path: Path, options: DataOptions) -> SampleSet:
    """One local .parquet file as a source."""
    result = read_parquet([path], options, root=path.parent, readme=None, description=str(path))
    result.provenance.update(kind="parquet", path=str(path.resolve()))
    return result


def open_parquet_folder(root: Path, options: DataOptions) -> SampleSet:
    """A local folder of parquet shards (a downloaded hub dataset, say) as a source: one split of it."""
    shards = sorted(p for p in root.rglob("*.parquet") if p.is_file())
    if not shards:
        raise TrainError(f"{root} has neither 0_real/1_fake (or nature/ai) class folders nor parquet files")
    readme = root / "README.md" if (root / "README.md").is_file() else None
    files, split = select_split([p.relative_to(root).as_posix() for p in shards], options.split,
                                read_card(readme) if readme else {})
    result = read_parquet([root / f for f in files], options, root=root, readme=readme,
                          description=f"{root}" + (f" split={split}" if split else ""))
    result.provenance.update(kind="parquet", path=str(root.resolve()), split=split, files=files)
    return result
