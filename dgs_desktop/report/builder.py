"""The analyst's report as one self-contained HTML file (GUI-free).

First page: the case, examiner and case number, what the reader must know before any verdict
(model warnings, calibration, mixed thresholds), the verdict counts with the inconclusive
reasons, and an overview table (file, P(fake), verdict, reasons, and the model when rows were
scored by more than one). Then the histogram, the run and the model's identity. Then per
image: thumbnail, patch overlay and mosaic recomputed from the file with the scan's own safe
reader and patch selection, P(fake), verdict, threshold, provenance, sha256 (checked against
the scan's), size, and the analyst's note and tags. Appendices: how the model was trained (its
configuration and provenance), a case's scoring history (every run, earlier scores included)
and its log (timestamped actions).

Everything that comes from files or rows is escaped; images are inlined as data: URIs that
this program encoded; a Content-Security-Policy forbids anything but inline styles and data:
images, so even a mistake in escaping could not load or run anything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from .. import __version__
from ..case import ScoreEntry
from ..detector.hubaccess import checkpoint_name
from ..detector.manifest import model_warning
from ..ownfiles import GENERATOR_MARK
from ..provenance.summary import ProvenanceReport
from ..record import format_threshold
from ..scan.csvio import FORMULA_STARTS
from ..verdict import FAKE, INCONCLUSIVE, REAL, RULE_TEXT
from . import images
from .inputs import ModelInfo, ReportItem, ReportSource

log = logging.getLogger(__name__)

MAX_FIELDS_SHOWN = 80
MAX_FIELD_CHARS = 400

STYLE = """
body { font-family: sans-serif; font-size: 10pt; color: #111; margin: 24px; }
h1 { font-size: 18pt; margin: 0 0 4px 0; } h2 { font-size: 13pt; margin: 18px 0 6px 0; }
h3 { font-size: 11pt; margin: 14px 0 4px 0; word-break: break-all; }
table.kv td { padding: 2px 8px 2px 0; vertical-align: top; }
table.kv td.k { color: #555; }
td.mono, span.mono { font-family: monospace; word-break: break-all; }
span.hash { font-family: monospace; font-size: 8pt; word-break: break-all; }
.muted { color: #666; } .fake { color: #b91c1c; font-weight: bold; } .real { color: #15803d; font-weight: bold; }
.inconclusive { color: #6a1b9a; font-weight: bold; }
table.overview { border-collapse: collapse; } table.overview td, table.overview th { border-bottom: 1px solid #ddd;
  padding: 2px 6px; text-align: left; vertical-align: top; font-size: 9pt; }
.error { color: #92400e; font-weight: bold; }
.item { border-top: 1px solid #ccc; margin-top: 14px; page-break-before: always; }
.pics td { padding: 4px 8px 0 0; vertical-align: top; font-size: 8pt; color: #555; }
.warn { background: #fef3c7; }
"""
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def text(value: object) -> str:
    """Escaped text for HTML, whatever the value held (undecodable file-name bytes become
    replacement characters instead of breaking the UTF-8 file)."""
    shown = "" if value is None else str(value)
    shown = shown.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return html.escape(shown, quote=True)


KEY_WIDTH = "28%"  # of a key/value table: the value column keeps the rest (a sha256 fits on one or two lines)


def _kv_rows(rows: list[tuple[str, str]], raw_values: bool = False) -> str:
    """<tr> rows of a key/value table; values are escaped unless `raw_values` (our own markup).
    A 64-hex-digit value (a sha256) is set small in monospace so it does not wrap into a column."""
    out = []
    for key, value in rows:
        shown = value if raw_values else _value_html(value)
        out.append(f'<tr><td class="k">{text(key)}</td><td>{shown}</td></tr>')
    return "".join(out)


def kv_table(rows: list[tuple[str, str]], raw_values: bool = False) -> str:
    """A key/value table across the page whose key column is KEY_WIDTH wide (set on its first row)."""
    body = _kv_rows(rows, raw_values).replace('<td class="k">', f'<td class="k" width="{KEY_WIDTH}">', 1)
    return f'<table class="kv" width="100%">{body}</table>'


_HEX64 = re.compile(r"\b[0-9a-f]{64}\b")


def _value_html(value: object) -> str:
    return _HEX64.sub(lambda m: f'<span class="hash">{m.group(0)}</span>', text(value))


def _verdict_html(item: ReportItem) -> str:
    label = item.assessment.verdict
    if not label:
        return f'<span class="error">no verdict ({text(item.record.status)})</span>'
    return f'<span class="{label}">{text(label)}</span>'


def _reasons_html(item: ReportItem) -> str:
    return "<br>".join(text(reason) for reason in item.assessment.reasons) or "—"


def _reference_text(item: ReportItem) -> str:
    if item.reference_fpr is None:
        return "—"
    of = f" of {item.reference_n}" if item.reference_n else ""
    return f"{item.reference_fpr:.1%}{of} real reference photos score at least this high"


def _format_probability(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _flatten(prefix: str, value: object, out: list[tuple[str, str]], depth: int = 0) -> None:
    if isinstance(value, dict) and depth < 4:
        for key in sorted(value):
            _flatten(f"{prefix}.{key}" if prefix else str(key), value[key], out, depth + 1)
    else:
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else str(value)
        out.append((prefix, shown[:MAX_FIELD_CHARS]))


def _compact(value: object, depth: int = 0) -> str:
    """A nested manifest record on one line, e.g. 'embed_dim=32, vision_cfg(width=64, layers=2)'."""
    if isinstance(value, dict) and depth < 3:
        return ", ".join(f"{k}({_compact(v, depth + 1)})" if isinstance(v, dict) else f"{k}={_compact(v, depth + 1)}"
                         for k, v in sorted(value.items()))
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list) else str(value)


def _without_text_tower(record: object) -> object:
    if isinstance(record, dict):
        return {k: _without_text_tower(v) for k, v in record.items() if "text" not in str(k).lower()}
    return record


def model_rows(model: ModelInfo) -> list[tuple[str, str]]:
    """What the report's front part says about the model: its identity and validation metrics
    (how it was trained is in the appendix: `training_rows`)."""
    rows = [("Checkpoint", model.source or "—"), ("Checkpoint sha256 (manifest)", model.sha256 or "—")]
    manifest = model.manifest
    if manifest is None:
        rows.append(("Manifest", model.manifest_note or "not available"))
        return rows
    base = manifest.get("base_weights") or {}
    rows += [("Architecture", str(manifest.get("architecture", "—"))),
             ("Base weights", f"{base.get('id', '—')}" + (" (bundled)" if base.get("bundled") else "")),
             ("Checkpoint threshold", str(manifest.get("threshold", "—")))]
    metrics = (manifest.get("provenance") or {}).get("final_metrics")
    if isinstance(metrics, dict) and metrics.get("val"):
        metric_rows: list[tuple[str, str]] = []
        _flatten("", metrics["val"], metric_rows)
        rows += [(f"Validation: {key}", value) for key, value in metric_rows[:40]]
    else:
        rows.append(("Validation metrics", "none recorded in the checkpoint"))
    return rows


def training_rows(model: ModelInfo) -> list[tuple[str, str]]:
    """The appendix on the model: its training provenance and configuration in full."""
    manifest = model.manifest
    if manifest is None:
        return []
    rows: list[tuple[str, str]] = []
    provenance = dict(manifest.get("provenance") or {})
    provenance.pop("final_metrics", None)
    provenance_rows: list[tuple[str, str]] = []
    _flatten("", provenance, provenance_rows)
    rows += [(f"Provenance: {key}", value) for key, value in provenance_rows[:40]]
    rows.append(("LoRA", _compact(manifest.get("lora") or {})[:MAX_FIELD_CHARS]))
    backbone = manifest.get("backbone")
    if isinstance(backbone, dict):  # the image tower; the text tower plays no part in a score
        rows.append(("Backbone", _compact(_without_text_tower(backbone))[:MAX_FIELD_CHARS]))
    return rows


def file_path(text_from_csv: str) -> Path:
    """The file a row names. A CSV writer that defuses spreadsheet formulas prefixes such cells
    with a quote; that quote is dropped when the name without it is the file that exists."""
    path = Path(text_from_csv)
    if text_from_csv.startswith("'") and text_from_csv[1:].startswith(FORMULA_STARTS) and not os.path.lexists(path):
        return Path(text_from_csv[1:])
    return path


class ImageSection:
    """One image's part of the report, recomputed from the file (never trusting it)."""

    def __init__(self, index: int, item: ReportItem, total: int = 0):
        self.index, self.item, self.total = index, item, total

    def render(self) -> str:
        item, record = self.item, self.item.record
        pictures, details, warnings = self._recompute()
        size = f"{record.width}×{record.height}" if record.width and record.height else "—"
        rows = [("P(fake)", text(_format_probability(record.fake_probability))),
                ("Verdict", _verdict_html(item)),
                ("Inconclusive because", _reasons_html(item)),
                ("Threshold", text(f"{format_threshold(item.threshold)} ({RULE_TEXT})")),
                ("Your real photos", text(_reference_text(item))),
                ("Status", text(record.status) + (f' — <span class="error">{text(record.error)}</span>'
                                                  if record.error else "")),
                ("sha256 (scan)", f'<span class="mono">{text(record.sha256 or "—")}</span>'),
                ("Size", text(f"{size} px, {record.format or '?'}" + details.pop("bytes", ""))),
                ("Notes", text("; ".join(record.notes) or "—")),
                ("Same content as", text(record.same_content_as or "—")),
                ("Provenance (scan)", text(record.provenance or "—"))]
        if item.note:
            rows.append(("Analyst's note", text(item.note).replace("\n", "<br>")))
        warning_html = "".join(f'<p class="warn">{text(w)}</p>' for w in warnings)
        name = os.path.basename(item.path) or item.path
        of_total = f" of {self.total}" if self.total else ""
        return (f'<div class="item"><h3>Image {self.index}{of_total}: {text(name)}</h3>'
                f'<p class="muted mono">{text(item.path)}</p>{warning_html}{pictures}'
                f'<table class="kv">{_kv_rows(rows, raw_values=True)}{details.pop("provenance_rows", "")}</table>'
                f'{details.pop("provenance", "")}</div>')

    def _recompute(self) -> tuple[str, dict[str, str], list[str]]:
        from ..detector.patches import select_patches
        from ..provenance.summary import analyze
        from ..scan.decode import DecodeError, decode_bytes, read_file

        item = self.item.record
        warnings: list[str] = []
        details: dict[str, str] = {}
        try:
            data = read_file(self.item.file if self.item.file is not None else file_path(item.path))
        except DecodeError as exc:
            return "", details, [f"The file cannot be read now ({exc}); pictures and metadata are missing."]
        details["bytes"] = f", {len(data):,} bytes"
        try:
            decoded = decode_bytes(data)
        except DecodeError as exc:
            decoded = None
            if item.status == "ok":
                warnings.append(f"The file no longer decodes ({exc}).")
        current = hashlib.sha256(data).hexdigest()
        if item.sha256 and current != item.sha256:
            warnings.append(f"The file has changed since the scan: its sha256 is now {current}; the pictures and "
                            "metadata below are of the current file, the score is of the scanned one.")
        report = analyze(data)
        details["provenance_rows"], details["provenance"] = provenance_html(report)
        if decoded is None:
            return "", details, warnings
        try:
            selection = select_patches(decoded.image)
        except Exception as exc:  # noqa: BLE001 - the row still goes into the report
            warnings.append(f"Patch selection failed ({type(exc).__name__}).")
            return "", details, warnings
        # Shown sizes fit three pictures across an A4 page (about 700 CSS px) in Qt's PDF layout too.
        thumb_w, overlay_w = _shown_width(decoded.image, 150), _shown_width(decoded.image, 260)
        thumbnail = images.encode(images.scaled(decoded.image, images.THUMBNAIL_SIDE), "JPEG")
        overlay = images.encode(images.overlay(decoded.image, selection), "JPEG")
        mosaic = images.encode(Image.fromarray(selection.mosaic), "PNG")
        pictures = ('<table class="pics"><tr>'
                    f'<td><img src="{thumbnail}" alt="thumbnail" width="{thumb_w}"><br>thumbnail</td>'
                    f'<td><img src="{overlay}" alt="patch overlay" width="{overlay_w}"><br>'
                    'selected patches (blue: smooth, orange: detailed)</td>'
                    f'<td><img src="{mosaic}" alt="mosaic" width="224" height="224"><br>7×7 mosaic the detector saw'
                    '</td></tr></table>')
        return pictures, details, warnings


def _shown_width(image: Image.Image, box: int) -> int:
    """Display width of `image` fitted into a `box`-px square."""
    return max(1, round(image.width * min(box / image.width, box / image.height)))


def provenance_html(report: ProvenanceReport) -> tuple[str, str]:
    """Signals, C2PA and metadata of one file as escaped HTML: (rows for the image's table,
    the embedded thumbnail and the full metadata list below it)."""
    meta, c2pa = report.metadata, report.c2pa
    rows: list[tuple[str, str]] = []
    for signal in report.signals:
        rows.append((f"Signal ({signal.kind})", signal.line()))
    if c2pa.present:
        rows += [("C2PA", c2pa.state_text), ("C2PA signer", f"{c2pa.signer} ({c2pa.issuer})"),
                 ("C2PA claim generator", c2pa.claim_generator or "—"),
                 ("C2PA declares AI", ", ".join(c2pa.ai_source_types) or "no"),
                 ("C2PA actions", "; ".join(c2pa.actions) or "—")]
    else:
        rows.append(("C2PA", "no Content Credentials"))
    for label, value in (("Camera", meta.camera), ("Lens", meta.lens), ("Software", meta.software),
                         ("Date taken", meta.date_taken), ("ICC profile", meta.icc_profile),
                         ("GPS", f"{meta.gps[0]:.6f}, {meta.gps[1]:.6f}" if meta.gps else ""),
                         ("JPEG quality", "" if not meta.jpeg_qtables else
                          (f"~{meta.jpeg_quality}" if meta.jpeg_quality else "custom quantisation tables"))):
        if value:
            rows.append((label, value))
    rows += [("Metadata problem", problem) for problem in meta.problems]
    shown = [(f"{group} {name}", value[:MAX_FIELD_CHARS]) for group, name, value in meta.fields[:MAX_FIELDS_SHOWN]]
    extra = len(meta.fields) - len(shown)
    thumb_html = ""
    if meta.thumbnail:
        thumb = images.reencoded_thumbnail(meta.thumbnail)
        if thumb is not None:
            thumb_html = (f'<p class="muted">Embedded EXIF thumbnail (compare with the image):<br>'
                          f'<img src="{images.encode(thumb, "PNG")}" alt="embedded thumbnail"></p>')
    more = f'<p class="muted">… and {extra} more metadata fields</p>' if extra > 0 else ""
    fields_html = (f'<p class="muted">All metadata ({len(meta.fields)} fields):</p>'
                   f'<table class="kv">{_kv_rows(shown)}</table>{more}') if shown else \
        '<p class="muted">No metadata in the file.</p>'
    return _kv_rows(rows), thumb_html + fields_html


def summary_counts(items: list[ReportItem]) -> dict[str, int]:
    counts = {"images": len(items), FAKE: 0, REAL: 0, INCONCLUSIVE: 0, "errors": 0}
    for item in items:
        label = item.assessment.verdict
        counts[label or "errors"] += 1
    return counts


def model_labels(items: list[ReportItem]) -> dict[str, str]:
    """A letter per model that scored rows (manifest sha256 -> 'A', 'B', ...), in row order."""
    labels: dict[str, str] = {}
    for item in items:
        sha = item.record.checkpoint_sha256
        if item.record.scanned and sha and sha not in labels:
            labels[sha] = chr(ord("A") + len(labels)) if len(labels) < 26 else str(len(labels) + 1)
    return labels


def overview_html(items: list[ReportItem]) -> str:
    """Page 1's table: each file with its P(fake), verdict and reasons, and which model scored it
    when more than one did (a legend names them)."""
    labels = model_labels(items)
    mixed = len(labels) > 1
    rows = "".join(
        f"<tr><td>{index}</td><td class='mono'>{text(os.path.basename(item.path) or item.path)}</td>"
        f"<td>{text(_format_probability(item.record.fake_probability))}</td><td>{_verdict_html(item)}</td>"
        f"<td>{_reasons_html(item) if item.assessment.reasons else ''}</td>"
        + (f"<td>{text(labels.get(item.record.checkpoint_sha256, ''))}</td>" if mixed else "") + "</tr>"
        for index, item in enumerate(items, 1))
    legend = ""
    if mixed:
        names = {i.record.checkpoint_sha256: i.record.checkpoint for i in items if i.record.checkpoint}
        legend = "<p class='muted'>Models: " + "; ".join(
            f"{text(label)} = {text(names.get(sha, ''))} (manifest sha256 {_value_html(sha)})"
            for sha, label in labels.items()) + "</p>"
    return ("<table class='overview' width='100%'><tr><th>#</th><th>File</th><th>P(fake)</th><th>Verdict</th>"
            f"<th>Inconclusive because</th>{'<th>Model</th>' if mixed else ''}</tr>{rows}</table>{legend}")


def reason_counts(items: list[ReportItem]) -> dict[str, int]:
    """How many rows each inconclusive reason applies to (by its code)."""
    counts: dict[str, int] = {}
    for item in items:
        for reason in item.assessment.reasons:
            code = str(reason).split(":", 1)[0].strip()
            counts[code] = counts.get(code, 0) + 1
    return counts


def history_html(source: ReportSource) -> str:
    """Appendix: every scoring run the case keeps, and the earlier scores of files scored again."""
    from ..case import scoring_runs

    if not source.history:
        return ""
    runs = scoring_runs(source.history)
    run_tables = "".join(
        f"<h3>Run {index}: {text(checkpoint_name(run.checkpoint) or 'unnamed model')}</h3>" + kv_table([
            ("Model", run.checkpoint or "—"), ("Manifest sha256", run.checkpoint_sha256 or "—"),
            ("Device, precision", f"{run.device} {run.precision}".strip() or "—"),
            ("First and last score", f"{run.first} … {run.last}"), ("Files", f"{run.files} ({run.ok} scored ok)"),
            ("Threshold", ", ".join(format_threshold(t) for t in run.thresholds) or "—")])
        for index, run in enumerate(runs, 1))
    by_path: dict[str, list[ScoreEntry]] = {}
    for entry in source.history:
        by_path.setdefault(entry.record.path, []).append(entry)
    earlier = "".join(
        f"<tr><td class='mono'>{text(os.path.basename(path) or path)}</td><td>{text(entry.record.scanned_at)}</td>"
        f"<td>{text(entry.record.checkpoint or entry.record.checkpoint_sha256[:16])}</td>"
        f"<td>{text(_format_probability(entry.record.fake_probability) if entry.record.ok else entry.record.error)}"
        f"</td><td>{text(format_threshold(entry.threshold) if entry.threshold is not None else '—')}</td>"
        f"<td>{text(entry.record.verdict(entry.threshold) if entry.threshold is not None else '')}</td></tr>"
        for path, entries in by_path.items() if len(entries) > 1 for entry in entries)
    earlier_html = ("<h3>Files scored more than once (every score, oldest first)</h3><table class='overview' "
                    "width='100%'><tr><th>File</th><th>Scored</th><th>Model</th><th>P(fake)</th><th>Threshold</th>"
                    f"<th>p &gt; threshold</th></tr>{earlier}</table>") if earlier else ""
    return ("<div class='item'><h2>Appendix: scoring history</h2><p class='muted'>Every scoring the case keeps; "
            f"none is ever overwritten. The overview shows each file's current score.</p>{run_tables}{earlier_html}"
            "</div>")


def audit_html(source: ReportSource) -> str:
    """Appendix: the case's log, the chain of custody."""
    if not source.audit:
        return ""
    rows = "".join(f"<tr><td>{text(e.at)}</td><td>{text(e.user)}</td><td>{text(e.action)}</td>"
                   f"<td>{_value_html(e.detail)}</td></tr>" for e in source.audit)
    return ("<div class='item'><h2>Appendix: case log</h2><p class='muted'>Every action recorded in the case "
            "file, in order (times in UTC).</p><table class='overview' width='100%'><tr><th>Time</th><th>User</th>"
            f"<th>Action</th><th>Detail</th></tr>{rows}</table></div>")


def warnings_html(source: ReportSource, model: ModelInfo) -> str:
    """What a reader must see before any verdict: a model whose verdicts mean nothing, a
    calibration on few photos, mixed thresholds."""
    warnings = []
    if model.manifest is not None and model_warning(model.manifest):
        warnings.append(model_warning(model.manifest))
    elif model.manifest is None:
        warnings.append(f"The model's manifest is not included ({model.manifest_note or 'not found'}): this report "
                        "cannot say what the model is or whether it is a test model.")
    run = source.run
    small = [n for n in run.reference_ns if n < 100]
    if small:
        warnings.append(f"The calibration rests on only {small[0]} real reference photos: its false-positive rate "
                        "is known only roughly (see the calibration file's bound).")
    if len(run.thresholds) > 1:
        warnings.append("The rows were judged with different thresholds: "
                        + ", ".join(format_threshold(t) for t in run.thresholds))
    return "".join(f'<p class="warn">⚠ {text(w)}</p>' for w in warnings)


def build_html(source: ReportSource, model: ModelInfo, generated_at: dt.datetime | None = None,
               progress: Callable[[int, int], None] | None = None, cancelled: Callable[[], bool] | None = None) -> str:
    """The whole report. `progress(done, total)` is called after each image; `cancelled()`
    stops the work early (InterruptedError)."""
    generated_at = generated_at or dt.datetime.now(dt.timezone.utc)
    counts = summary_counts(source.items)
    run = source.run
    thresholds = run.thresholds or [0.5]
    scored = [i.record.fake_probability for i in source.items if i.record.ok and i.record.fake_probability is not None]
    chart = images.encode(images.histogram(scored, thresholds[0]), "PNG")
    when = dt.datetime.fromtimestamp(source.modified, dt.timezone.utc)
    calibration = (("sha256 " + ", ".join(run.calibrations) + " on " + ", ".join(str(n) for n in run.reference_ns)
                    + " real reference photos") if run.calibrations
                   else "none (the model's or the analyst's threshold)")
    reasons = reason_counts(source.items)
    header_rows = [("Case", source.case_name or "—"), ("Case number", source.case_number or "not given"),
                   ("Examiner", source.examiner or "not given"),
                   ("Report made", f"{generated_at:%Y-%m-%d %H:%M:%S %Z} by dgs-desktop {__version__}")]
    glance_rows = [("Verdicts", f"{counts[FAKE]} fake, {counts[REAL]} real, {counts[INCONCLUSIVE]} inconclusive, "
                                f"{counts['errors']} not scored, of {counts['images']} images"),
                   ("Inconclusive reasons", ", ".join(f"{code} {n}" for code, n in reasons.items()) or "none"),
                   ("Threshold", ", ".join(format_threshold(t) for t in thresholds) + f" ({RULE_TEXT})"),
                   ("Calibration", calibration),
                   ("Model", "; ".join(run.checkpoints) or "—")]
    run_rows = [(f"From {source.kind}", f"{source.path}" + (f" (sha256 {source.sha256})" if source.sha256 else "")),
                (source.time_label, f"{when:%Y-%m-%d %H:%M:%S %Z} ({source.time_meaning})"),
                ("Scanned with", ", ".join(f"dgs-desktop {v}" for v in run.versions) or "—"),
                ("Device", "; ".join(run.devices) or "—"), ("Precision", "; ".join(run.precisions) or "—"),
                ("Threshold", ", ".join(format_threshold(t) for t in thresholds) + f" ({RULE_TEXT})"),
                ("Calibration", calibration)]
    count_rows = [("Images", str(counts["images"])), ("Fake", str(counts[FAKE])), ("Real", str(counts[REAL])),
                  ("Inconclusive", str(counts[INCONCLUSIVE])), ("Not scored (errors)", str(counts["errors"]))]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta name="generator" content="{GENERATOR_MARK} {text(__version__)}">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>DGS Desktop report — {text(source.path.name)}</title><style>{STYLE}</style></head><body>",
        "<h1>DGS Desktop report</h1>", kv_table(header_rows),
        warnings_html(source, model),
        '<p class="muted">P(fake) is the DGS-Net detector\'s probability that an image is AI-generated. '
        "Provenance signals are shown beside it and never change it. A verdict is <i>inconclusive</i> where "
        "DGS-Net is known to be unreliable for the image (the reasons are named).</p>",
        kv_table(glance_rows),
        f"<h2>Overview</h2>{overview_html(source.items)}",
        f'<h2>Summary</h2><table><tr><td width="190" style="vertical-align: top; white-space: nowrap">'
        f'<table class="kv">{_kv_rows(count_rows)}</table></td><td><img src="{chart}" alt="histogram of P(fake)" '
        'width="420" height="158"></td></tr></table>',
        f"<h2>Run</h2>{kv_table(run_rows)}",
        f"<h2>Model</h2>{kv_table(model_rows(model))}"
        + ('<p class="muted">How it was trained: see the appendix.</p>' if model.manifest is not None else ""),
    ]
    total = len(source.items)
    for index, item in enumerate(source.items, 1):
        if cancelled is not None and cancelled():
            raise InterruptedError("report cancelled")
        try:
            parts.append(ImageSection(index, item, total).render())
        except Exception as exc:  # noqa: BLE001 - one bad file must not lose the whole report
            log.debug("report section failed", exc_info=True)
            parts.append(f'<div class="item"><h3>Image {index} of {total}: {text(item.path)}</h3>'
                         f'<p class="warn">This image could not be rendered: {text(type(exc).__name__)}: '
                         f"{text(exc)}</p></div>")
        if progress is not None:
            progress(index, total)
    training = training_rows(model)
    if training:
        parts.append(f"<div class='item'><h2>Appendix: how the model was trained</h2>{kv_table(training)}</div>")
    parts += [history_html(source), audit_html(source)]
    parts.append("</body></html>\n")
    return "\n".join(parts)
