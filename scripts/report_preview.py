"""Makes a sample report end to end and renders it for a person to look at.

    PYTHONPATH=. .venv/bin/python scripts/report_preview.py OUT_DIR

Generates provenance samples (generator PNG chunks, a camera JPEG, a C2PA-signed JPEG, HEIC,
AVIF, a JPEG XL stub, a hostile file name, a file removed after the scan), scans them with a
random `test-tiny` checkpoint, writes OUT_DIR/report.html and report.pdf with
`dgs-desktop report`, then screenshots the HTML with headless Chromium
(OUT_DIR/report_html.png) and rasterises the PDF's first pages with pdftoppm
(OUT_DIR/report_pdf-N.png). Missing tools are skipped with a message. No network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def make_checkpoint(path: Path) -> Path:
    import torch

    from dgs_desktop.detector.checkpoint import save_checkpoint
    from dgs_desktop.detector.model import build_detector

    detector = build_detector("test-tiny", None)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, param in detector.named_parameters():
            if "lora_B" in name or name.startswith("head."):
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    return save_checkpoint(path, detector, architecture="test-tiny", base_weights="random-init",
                           provenance={"purpose": "report preview",
                                       "final_metrics": {"val": {"acc": 0.91, "ap": 0.95, "r_acc": 0.9,
                                                                 "f_acc": 0.92}}})


def make_inputs(folder: Path) -> Path:
    from provenance_samples import encoded, picture, sample_files

    folder.mkdir(parents=True, exist_ok=True)
    sample_files(folder)
    (folder / "phone.heic").write_bytes(encoded(picture(seed=11), "HEIF", quality=90))
    (folder / "phone.avif").write_bytes(encoded(picture(seed=12), "AVIF", quality=90))
    (folder / "image.jxl").write_bytes(b"\xff\x0a" + bytes(64))
    (folder / '<img src=x onerror="alert(1)">.png').write_bytes(encoded(picture(seed=13), "PNG"))
    gone = folder / "removed_after_scan.png"
    gone.write_bytes(encoded(picture(seed=14), "PNG"))
    return gone


def main(out: Path) -> int:
    from dgs_desktop.cli import main as cli

    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)
    checkpoint = make_checkpoint(work / "ckpt")
    gone = make_inputs(work / "images")
    csv_path = work / "scan.csv"
    assert cli(["scan", str(work / "images"), "--checkpoint", str(checkpoint), "--csv", str(csv_path),
                "--no-progress"]) == 0
    gone.unlink()
    html, pdf = out / "report.html", out / "report.pdf"
    assert cli(["report", str(csv_path), "--html", str(html), "--pdf", str(pdf)]) == 0
    print(f"report: {html} ({html.stat().st_size:,} bytes), {pdf} ({pdf.stat().st_size:,} bytes)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium:
        shot = out / "report_html.png"
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--screenshot={shot}", "--window-size=1100,2600", html.as_uri()],
                       check=True, capture_output=True, timeout=120)
        print(f"HTML screenshot: {shot}")
    else:
        print("chromium not found: no HTML screenshot (apt-get install chromium)")
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "3", str(pdf), str(out / "report_pdf")],
                       check=True, timeout=120)
        print(f"PDF pages: {sorted(p.name for p in out.glob('report_pdf-*.png'))}")
    else:
        print("pdftoppm not found: no PDF preview (apt-get install poppler-utils)")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "report_preview")))
