"""Which parquet files make a split of a dataset: the card's `configs`, else `datasets`' file-name rules."""

from __future__ import annotations

import fnmatch

from ..errors import TrainError

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
