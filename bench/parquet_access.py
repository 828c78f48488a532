"""Cost of reading training images from parquet shards (trainer/sources/cells.py) in data order vs
shuffled order, relative to reading the same bytes from files.

A dataset row is read by loading its row group's image column (LRU-cached per process), so
data-order passes (indexing, captions, stage 1) read each row group once, while a shuffled
stage-2 epoch reads about one row group per image. Images are incompressible random bytes of
the size of an average AIGIBench training image (~187 KB: 53.9 GB / 288,000), in row groups of
100 (what the `datasets` library writes for image datasets); the row-group cache holds 8 row
groups here, as a real dataset is far larger than any cache.

    python bench/parquet_access.py [IMAGES]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

IMAGE_BYTES = 187_000
ROW_GROUP = 100


def main() -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from trainer.sources import RowRef, cells, read_cell

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        blobs = [rng.bytes(IMAGE_BYTES) for _ in range(n)]
        table = pa.table({"image": pa.array([{"bytes": b, "path": None} for b in blobs],
                                            pa.struct([("bytes", pa.binary()), ("path", pa.string())]))})
        shard = tmp / "train-00000-of-00001.parquet"
        pq.write_table(table, shard, row_group_size=ROW_GROUP)
        for i, blob in enumerate(blobs):
            (tmp / f"{i:06d}.bin").write_bytes(blob)
        refs = [RowRef(shard, "image", i // ROW_GROUP, i % ROW_GROUP) for i in range(n)]

        def timed(order, read) -> float:
            start = time.perf_counter()
            for i in order:
                read(i)
            return (time.perf_counter() - start) / len(order)

        budget = 8 * ROW_GROUP * IMAGE_BYTES  # 8 row groups: a real dataset (54 GB) never fits

        def fresh_cache():
            cells._CACHE = cells._RowGroupCache(budget)

        data_order = list(range(n))
        shuffled = list(rng.permutation(n))
        timed(data_order, lambda i: (tmp / f"{i:06d}.bin").read_bytes())  # warm the page cache
        files = timed(shuffled, lambda i: (tmp / f"{i:06d}.bin").read_bytes())
        fresh_cache()
        sequential = timed(data_order, lambda i: read_cell(refs[i]))
        fresh_cache()
        random_order = timed(shuffled, lambda i: read_cell(refs[i]))
    print(f"{n} images of {IMAGE_BYTES // 1000} KB, row groups of {ROW_GROUP}, page cache warm, 1 thread")
    print(f"  files, shuffled:            {files * 1e3:7.2f} ms/image  ratio 1.00")
    print(f"  parquet, data order:        {sequential * 1e3:7.2f} ms/image  ratio {sequential / files:.2f}")
    print(f"  parquet, shuffled:          {random_order * 1e3:7.2f} ms/image  ratio {random_order / files:.2f}")
    print(f"  shuffled / data order:      {random_order / sequential:.1f}")
    print(f"  row-group cache {budget >> 20} MB (8 row groups), {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
