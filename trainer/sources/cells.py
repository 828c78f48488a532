"""Image cells of parquet shards: where one is (`RowRef`) and its bytes, read a row group at a time.

A row group's image column is kept in a small per-process cache (`DGS_ROW_GROUP_CACHE_MB`), so
reading a dataset in shard order decodes each row group once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from dgs_desktop.envknobs import int_knob
from dgs_desktop.scan.decode import DecodeError

ROW_GROUP_CACHE_BYTES = int_knob("DGS_ROW_GROUP_CACHE_MB", 256, minimum=0) << 20


@dataclass(frozen=True)
class RowRef:
    """One image cell of a parquet shard: the file, the image column and where the row is."""

    shard: Path
    column: str
    row_group: int
    row: int  # within the row group


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
