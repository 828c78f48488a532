"""Small image datasets written as parquet shards the way the `datasets` library writes them.

`write_dataset(folder, rows_per_split, ...)` writes `data/{split}-0000i-of-0000n.parquet` with an
`image` struct column ({bytes, path}), a `label` ClassLabel (real, fake) and a `generator`
ClassLabel, the `huggingface` schema metadata with those features, and a README.md whose YAML
`configs`/`dataset_info` describe the splits, as on the hub. Images are generated from fixed
seeds (reals are smooth gradients, fakes add a periodic pattern), so runs are reproducible.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

GENERATORS = ("Real", "ProGAN", "SD14")


def image_bytes(seed: int, fake: bool, size: tuple[int, int] = (72, 64), fmt: str = "PNG") -> bytes:
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([x / w, y / h, (x + y) / (w + h)], axis=-1) * rng.uniform(120, 220)
    base += rng.normal(0, 6, size=(h, w, 3))
    if fake:
        base += 40 * np.sin(x * 2.1)[..., None] * np.cos(y * 1.7)[..., None]
    buffer = io.BytesIO()
    Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


def hf_metadata(generators=GENERATORS, category_names=None) -> dict:
    features = {"image": {"_type": "Image"},
                "label": {"names": ["real", "fake"], "_type": "ClassLabel"},
                "generator": {"names": list(generators), "_type": "ClassLabel"}}
    if category_names:
        features["category"] = {"names": list(category_names), "_type": "ClassLabel"}
    return {"info": {"features": features}}


def card(splits: dict[str, int], generators=GENERATORS) -> str:
    names = "\n".join(f"          '{i}': {g}" for i, g in enumerate(generators))
    configs = "\n".join(f"  - split: {s}\n    path: data/{s}-*" for s in splits)
    infos = "\n".join(f"  - name: {s}\n    num_examples: {n}" for s, n in splits.items())
    return (f"---\nconfigs:\n- config_name: default\n  data_files:\n{configs}\ndataset_info:\n  features:\n"
            f"  - name: image\n    dtype: image\n  - name: label\n    dtype:\n      class_label:\n        names:\n"
            f"          '0': real\n          '1': fake\n  - name: generator\n    dtype:\n      class_label:\n"
            f"        names:\n{names}\n  splits:\n{infos}\nlicense: cc-by-4.0\n---\n\n# test dataset\n")


def rows(count_per_generator: int, seed: int, generators=GENERATORS, broken: bool = False) -> list[dict]:
    """Reals carry the generator `Real` (index 0); every other generator has only fakes."""
    out = []
    for g, name in enumerate(generators):
        fake = g != 0
        n = count_per_generator * (len(generators) - 1) if not fake else count_per_generator
        for i in range(n):
            size = (72, 64) if i % 3 else (40, 120)
            fmt = "JPEG" if i % 2 else "PNG"
            out.append({"image": {"bytes": image_bytes(seed * 1000 + g * 100 + i, fake, size, fmt),
                                  "path": f"{name}_{i}.{fmt.lower()}"},
                        "label": int(fake), "generator": g})
    if broken:
        out.append({"image": {"bytes": b"\x89PNG\r\n\x1a\n not really a png", "path": "broken.png"},
                    "label": 1, "generator": 1})
        out.append({"image": {"bytes": None, "path": "elsewhere.png"}, "label": 0, "generator": 0})
        out.append({"image": {"bytes": image_bytes(seed, True), "path": "nolabel.png"}, "label": None,
                    "generator": 1})
    return out


def write_shards(folder: Path, split: str, table_rows: list[dict], shards: int = 2, row_group_size: int = 7,
                 metadata: dict | None = None) -> list[Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([
        ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        ("label", pa.int64()),
        ("generator", pa.int64()),
    ], metadata={"huggingface": json.dumps(metadata or hf_metadata())})
    paths = []
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for k in range(shards):
        part = table_rows[k::shards]
        table = pa.Table.from_pylist(part, schema=schema)
        path = folder / "data" / f"{split}-{k:05d}-of-{shards:05d}.parquet"
        pq.write_table(table, path, row_group_size=row_group_size)
        paths.append(path)
    return paths


def write_dataset(folder: Path, splits: dict[str, int], seed: int = 0, broken_split: str | None = None) -> Path:
    """`splits`: split name -> fakes per generator (reals: as many as all fakes together)."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for k, (split, n) in enumerate(splits.items()):
        table_rows = rows(n, seed + k, broken=split == broken_split)
        counts[split] = len(table_rows)
        write_shards(folder, split, table_rows)
    (folder / "README.md").write_text(card(counts), encoding="utf-8")
    return folder
