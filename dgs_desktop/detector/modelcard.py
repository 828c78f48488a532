"""The metrics a published checkpoint's model card states (GUI-free; for the model manager).

`dgs-desktop-train publish` writes a hub model card (`README.md`) whose YAML metadata has a
`dgs_desktop` block with the evaluation tables it was given, besides the hub's standard
`model-index` (written and read as huggingface_hub `EvalResult`s). `card_metrics(readme)` reads
them back; `hub_card_metrics("hf:org/name@rev")` fetches the card of a hub checkpoint (the
download itself only fetches the manifest's files) and reads it. A card is text from a
stranger: parsed with a safe YAML loader, size-limited, and every number checked; anything
unusable is left out, never an error.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .hubaccess import CHECKPOINT_SCHEME, is_offline, parse_repo_spec

if TYPE_CHECKING:
    from huggingface_hub import EvalResult, ModelCardData

# One table row: "subset" (str), "n_real" / "n_fake" (int or None), METRIC_KEYS (0-1 or None).
MetricRow = dict[str, Any]

CARD_NAME = "README.md"
CARD_KEY = "dgs_desktop"  # the card metadata block written by `dgs-desktop-train publish`
METRIC_KEYS = ("acc", "r_acc", "f_acc", "ap")
MAX_CARD_BYTES = 1 << 20
# How an evaluation's scores were computed: `dgs-desktop-train evaluate --csv` columns after the
# metrics, and the card's `scoring` mapping (with the library versions, trainer.facts).
SCORING_SETTINGS = ("precision", "device", "jpeg_decoder", "decoding", "blur_backend")


@dataclass
class CardEvaluation:
    """One evaluation table of a card; metric values are fractions (0-1), None when absent."""

    name: str
    rows: list[MetricRow] = field(default_factory=list)
    mean: MetricRow | None = None  # plain mean of the rows (the authors' test.py "Mean")
    paper_table: MetricRow | None = None  # the paper's mAcc / mA.P. (one R.Acc column + each F.Acc)
    perturbation: str = ""
    note: str = ""
    scoring: dict[str, str] = field(default_factory=dict)  # SCORING_SETTINGS and library versions

    @property
    def headline(self) -> MetricRow:
        """The row to show first: the paper's mAcc/mAP when known, else the mean."""
        return self.paper_table or self.mean or {}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _count(value: object) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _row(raw: object) -> MetricRow | None:
    if not isinstance(raw, dict):
        return None
    row: MetricRow = {"subset": str(raw.get("subset", ""))[:200], "n_real": _count(raw.get("n_real")),
           "n_fake": _count(raw.get("n_fake"))}
    for key in METRIC_KEYS:
        value = _number(raw.get(key))
        row[key] = value if value is None or 0.0 <= value <= 1.0 else None
    return row


def _scoring(raw: object) -> dict[str, str]:
    """A card's `scoring` mapping: short text values under short keys, anything else dropped."""
    if not isinstance(raw, dict):
        return {}
    return {str(k)[:40]: str(v)[:200] for k, v in list(raw.items())[:40]
            if isinstance(v, (str, int, float)) and not isinstance(v, bool)}


def scoring_line(facts: dict[str, str], versions: bool = True) -> str:
    """'scored in fp32 on cpu, JPEG decoder pillow, authors' decoding, blur pillow; torch 2.4.1, ...'."""
    if not facts:
        return "scoring settings not recorded"
    settings = [f"{facts.get('precision') or '?'} on {facts.get('device') or '?'}",
                f"JPEG decoder {facts.get('jpeg_decoder') or '?'}", f"{facts.get('decoding') or '?'} decoding"]
    if facts.get("blur_backend"):
        settings.append(f"blur {facts['blur_backend']}")
    line = "scored in " + ", ".join(settings)
    libraries = [f"{k} {v}" for k, v in facts.items() if k not in SCORING_SETTINGS and v]
    return line + ("; " + ", ".join(libraries) if versions and libraries else "")


def _read_card_data(readme: Path) -> ModelCardData | None:
    """The card's metadata as huggingface_hub's `ModelCardData` (None when absent or unusable)."""
    try:
        with open(readme, "rb") as handle:
            raw = handle.read(MAX_CARD_BYTES + 1)
    except OSError:
        return None
    if len(raw) > MAX_CARD_BYTES:
        return None
    try:  # huggingface_hub's own card parser (a safe YAML loader; model-index -> EvalResult)
        from huggingface_hub import ModelCard, ModelCardData

        data = ModelCard(raw.decode("utf-8", errors="replace"), ignore_metadata_errors=True).data
        return data if isinstance(data, ModelCardData) else None
    except Exception:  # noqa: BLE001 - a malformed card has no metrics, it is not an error
        return None


def card_metrics(readme: str | os.PathLike[str]) -> list[CardEvaluation]:
    """The evaluation tables a model card states (a README.md, or a folder holding one)."""
    path = Path(readme)
    if path.is_dir():
        path = path / CARD_NAME
    data = _read_card_data(path)
    if data is None:
        return []
    block = data.get(CARD_KEY)
    evaluations = block.get("evaluations") if isinstance(block, dict) else None
    out: list[CardEvaluation] = []
    if isinstance(evaluations, list):
        for raw in evaluations[:100]:
            if not isinstance(raw, dict):
                continue
            rows = [r for r in (_row(x) for x in (raw.get("rows") or [])[:1000]) if r is not None]
            out.append(CardEvaluation(name=str(raw.get("name", "evaluation"))[:200], rows=rows,
                                      mean=_row(raw.get("mean")), paper_table=_row(raw.get("paper_table")),
                                      perturbation=str(raw.get("perturbation") or "")[:200],
                                      note=str(raw.get("note") or "")[:500], scoring=_scoring(raw.get("scoring"))))
        return out
    return _eval_result_metrics(data.eval_results or [])


def _eval_result_metrics(results: Iterable[EvalResult]) -> list[CardEvaluation]:
    """Cards from elsewhere: the accuracy / AP of each dataset in their `model-index` (in % or 0-1)."""
    summaries: dict[tuple[tuple[Any, ...], str], MetricRow] = {}  # one evaluation per dataset (EvalResult is one metric), in order
    for result in results:
        summary = summaries.setdefault((result.unique_identifier, result.dataset_name),
                                       {"subset": "mean", "n_real": None, "n_fake": None,
                                        **{k: None for k in METRIC_KEYS}})
        kind = str(result.metric_type or "").lower()
        metric = "acc" if kind == "accuracy" else "ap" if kind in ("average_precision", "ap") else None
        value = _number(result.metric_value)
        if metric and value is not None:
            summary[metric] = value / 100.0 if value > 1.0 else value
    return [CardEvaluation(name=str(name or "evaluation")[:200], mean=summary)
            for (_, name), summary in summaries.items() if any(summary[k] is not None for k in METRIC_KEYS)]


def hub_card_metrics(spec: str, *, cache_dir: str | Path | None = None) -> list[CardEvaluation]:
    """The card metrics of a hub checkpoint `hf:org/name[@rev]` (from the cache when offline).

    Returns [] when the repository has no card or it cannot be fetched: the card is optional.
    """
    ref = parse_repo_spec(spec, CHECKPOINT_SCHEME)
    try:
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(ref.repo_id, CARD_NAME, revision=ref.revision, cache_dir=cache_dir,
                               local_files_only=is_offline())
    except Exception:  # noqa: BLE001 - no card, no network, not in the cache: no metrics to show
        return []
    return card_metrics(path)


def format_percent(value: float | None) -> str:
    """0.976 -> '97.6' (the paper's tables), None -> 'n/a'."""
    return "n/a" if value is None else f"{100.0 * value:.1f}"


def format_card_metrics(evaluations: list[CardEvaluation]) -> str:
    """The card's tables as a few text lines (the model manager shows them under the manifest)."""
    if not evaluations:
        return "Published evaluation: none stated on the model card."
    lines = ["Published evaluation (from the model card, as stated by its publisher):"]
    for evaluation in evaluations:
        head = evaluation.headline
        kind = "paper_table" if evaluation.paper_table else "mean"
        extra = f" [{evaluation.perturbation}]" if evaluation.perturbation else ""
        lines.append(f"  {evaluation.name}{extra}: acc {format_percent(head.get('acc'))}, "
                     f"AP {format_percent(head.get('ap'))} ({kind}, {len(evaluation.rows)} subsets)")
        if evaluation.scoring:
            lines.append(f"    {scoring_line(evaluation.scoring)}")
        lines += [f"    {row['subset']}: acc {format_percent(row['acc'])}, r_acc {format_percent(row['r_acc'])}, "
                  f"f_acc {format_percent(row['f_acc'])}, AP {format_percent(row['ap'])}" for row in evaluation.rows[:30]]
    return "\n".join(lines)
