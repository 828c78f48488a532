"""How responsive the window stays while it scans: the longest event-loop stall.

A 10 ms QTimer ticks on the GUI thread while the window scans N small images with a test-tiny
checkpoint (or --checkpoint); every gap between ticks longer than 10 ms is time the GUI could
not react. Prints the longest gap during the scan and while idle, and their ratio, measured
in this one run.

    python bench/gui_responsiveness.py [--images 300] [--size 96x128] [--checkpoint DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # shared image generators
from gui_helpers import make_images  # noqa: E402

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def make_tiny_checkpoint(path: Path) -> Path:
    from dgs_desktop.detector.demo import save_demo_checkpoint

    return save_demo_checkpoint(path, seed=None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--size", default="96x128", help="HEIGHTxWIDTH of the generated images")
    parser.add_argument("--checkpoint", help="checkpoint folder (default: a fresh test-tiny one)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.lower().split("x"))

    from dgs_desktop.gui.app import make_application
    from dgs_desktop.gui.main_window import MainWindow
    from dgs_desktop.gui.model_controller import READY
    from dgs_desktop.gui.responsiveness import record_gaps
    from dgs_desktop.gui.settings import AppSettings

    app = make_application()  # noqa: F841 - the QApplication must live while the window runs
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        images = tmp_path / "images"
        make_images(images, args.images, size=(height, width))
        checkpoint = args.checkpoint or str(make_tiny_checkpoint(tmp_path / "tiny"))
        window = MainWindow(AppSettings(str(tmp_path / "settings.ini")))
        window.show()
        window.controller.start()
        window.load_model(checkpoint, args.device)
        if window.controller.state != READY:
            record_gaps(until=window.controller.session_changed)  # runs the event loop until the model is ready
        idle = record_gaps(seconds=2.0)
        started = time.perf_counter()
        window.add_paths([str(images)])
        busy = record_gaps(until=window.scan_finished)
        elapsed = time.perf_counter() - started
        done = len(window.model.rows)
        window.clear_results()  # nothing to keep: close without the unsaved-results question
        window.close()

    def describe(gaps):
        ordered = sorted(gaps)
        return (f"longest {max(gaps) * 1000:.0f} ms, p99 {ordered[int(len(ordered) * 0.99)] * 1000:.0f} ms, "
                f"median {statistics.median(gaps) * 1000:.1f} ms over {len(gaps)} ticks")

    print(f"scan of {done} images ({height}x{width}) on {args.device}: {elapsed:.2f} s, {done / elapsed:.0f} images/s")
    print(f"event loop while idle:     {describe(idle)}")
    print(f"event loop while scanning: {describe(busy)}")
    print(f"longest stall scanning / idle: {max(busy) / max(idle):.1f}x")
    print(f"LONGEST EVENT-LOOP STALL DURING SCAN: {max(busy) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
