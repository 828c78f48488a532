"""One file's scan result: what the CSV, the window, cases and reports show. Torch-free, so
the window and the report can hold and read results without loading the model stack."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..detector.patches import PatchSelection
from ..verdict import verdict


@dataclass
class ScanResult:
    path: str
    status: str  # "ok" or "error"
    sha256: str = ""
    fake_probability: float | None = None
    error: str = ""
    width: int | None = None
    height: int | None = None
    format: str = ""
    notes: list[str] = field(default_factory=list)
    provenance: str = ""  # one-line metadata / C2PA / generator signals, shown beside the score
    selection: PatchSelection | None = None  # kept only when the caller asks for it

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def verdict(self, threshold: float) -> str:
        return verdict(self.fake_probability, threshold)
