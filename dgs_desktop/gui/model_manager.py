"""Model manager: load a checkpoint folder, import the authors' .pth, download from the hub,
recent models, the active model's manifest, and the device."""

from __future__ import annotations

import json
import time
from pathlib import Path

from PySide6.QtCore import QStandardPaths, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
)

from ..detector.hubaccess import CHECKPOINT_SCHEME, RepoSpec
from .model_controller import READY
from .workers import Task, start_task

PROGRESS_INTERVAL_S = 0.05


def models_folder() -> Path:
    """Where imported and converted models go by default (per-user app data)."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation) or str(Path.home())
    return Path(base) / "models"


def hub_spec(repo_id: str, revision: str) -> str:
    """The dialog's two fields as `hf:ORG/NAME[@REVISION]` (a pasted `hf:` prefix is accepted)."""
    repo_id = repo_id.strip().removeprefix(CHECKPOINT_SCHEME)
    return str(RepoSpec(CHECKPOINT_SCHEME, repo_id, revision.strip() or None))


def download_from_hub(spec: str, report, cancelled):
    """Runs on a pool thread; progress is throttled so the dialog is not flooded."""
    from ..detector.hub import download_checkpoint

    last = 0.0

    def progress(done: int, total: int | None, message: str = "") -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_INTERVAL_S or (total and done >= total):
            last = now
            report((done, total, message))

    return download_checkpoint(spec, progress=progress, cancel=cancelled)


def import_pth(pth: str, out_dir: str):
    from ..detector.authors import import_authors_weights

    return str(import_authors_weights(Path(pth), Path(out_dir)))


# The headless scan's --precision choices; auto resolves per device (dgs_desktop.detector.device).
PRECISION_CHOICES = (("auto", "Auto (bf16 on CUDA and AMX/AVX512-BF16 CPUs)"), ("fp32", "fp32"),
                     ("bf16", "bf16 autocast"))


def card_text(spec: str) -> str:
    """The published evaluation a hub checkpoint's model card states (runs on a pool thread)."""
    from ..detector.modelcard import format_card_metrics, hub_card_metrics

    return format_card_metrics(hub_card_metrics(spec))


def manifest_summary(checkpoint, card: str = "") -> str:
    """What the manifest records; a hub model's published evaluation (`card`) comes first after
    the threshold, where it is seen without scrolling."""
    manifest = checkpoint.manifest
    lora = manifest.get("lora", {})
    provenance = manifest.get("provenance", {})
    base = manifest.get("base_weights", {})
    lines = [
        f"Source:        {checkpoint.source}",
        f"Folder:        {checkpoint.directory}",
        f"Manifest hash: {checkpoint.sha256}",
        f"Architecture:  {manifest.get('architecture')}",
        f"Base weights:  {base.get('id')}{' (bundled)' if base.get('bundled') else ''}",
        f"LoRA:          {', '.join(f'{k}={v}' for k, v in lora.items())}",
        f"Threshold:     {checkpoint.threshold:g}",
        *([card] if card else []),
        "Training / provenance:",
    ]
    lines += [f"  {key}: {json.dumps(value) if not isinstance(value, str) else value}"
              for key, value in sorted(provenance.items())]
    lines.append("Files:")
    lines += [f"  {name}  sha256 {digest[:16]}…" for name, digest in sorted(manifest.get("files", {}).items())]
    return "\n".join(lines)


def _human_bytes(count: float | None) -> str:
    if count is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return ""


class ModelManagerDialog(QDialog):
    load_requested = Signal(object, str)  # a folder / hf: spec / Checkpoint, and the device

    def __init__(self, controller, settings, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Model manager")
        self.controller = controller
        self.settings = settings
        self._jobs: set = set()
        self._download: Task | None = None

        layout = QVBoxLayout(self)
        layout.addWidget(self._build_active())
        layout.addWidget(self._build_get())
        layout.addWidget(self._build_hub())
        layout.addWidget(self._build_recent())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
        self.resize(720, 620)  # fits a 1024x700 laptop screen

        controller.state_changed.connect(self._refresh_active)
        # The window remembers a model on session_changed (connected before this dialog exists),
        # so the list refreshed here already holds it: "Recent models" updates at once.
        controller.session_changed.connect(lambda *_: self._refresh_recent())
        self._refresh_active()
        self._refresh_recent()

    # ---------------------------------------------------------------------------- sections
    def _build_active(self) -> QGroupBox:
        box = QGroupBox("Active model")
        self.state_label = QLabel()
        self.state_label.setWordWrap(True)
        self.manifest_view = QPlainTextEdit()
        self.manifest_view.setReadOnly(True)
        self.manifest_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.manifest_view.setMinimumHeight(150)
        self.manifest_view.setToolTip("What the active checkpoint's manifest records")
        self.device_combo = QComboBox()
        self.device_combo.setToolTip("Where the model runs: Auto picks a CUDA GPU when there is one, else the CPU")
        self.device_combo.activated.connect(self._device_chosen)
        self.precision_combo = QComboBox()
        for spec, label in PRECISION_CHOICES:
            self.precision_combo.addItem(label, spec)
        self.precision_combo.setToolTip("What the model computes in; recorded in the CSV precision column. Scores are "
                                        "bit-identical for the same device type, precision and batch size")
        self.precision_combo.activated.connect(self._precision_chosen)
        device_row = QHBoxLayout()
        device_row.addWidget(QLabel("Device:"))
        device_row.addWidget(self.device_combo, 1)
        device_row.addWidget(QLabel("Precision:"))
        device_row.addWidget(self.precision_combo)
        layout = QVBoxLayout(box)
        layout.addWidget(self.state_label)
        layout.addWidget(self.manifest_view)
        layout.addLayout(device_row)
        return box

    def _build_get(self) -> QGroupBox:
        box = QGroupBox("Load or import")
        load = QPushButton("Load checkpoint folder…")
        load.setToolTip("A folder with dgs_checkpoint.json (from dgs-desktop-train, an import, or a download)")
        load.clicked.connect(self.choose_folder)
        self.import_button = QPushButton("Import authors' weights (.pth)…")
        self.import_button.setToolTip("Converts model_epoch_step2.pth into a checkpoint folder; the file is read "
                                      "as plain tensors and never unpickled")
        self.import_button.clicked.connect(self.choose_pth)
        self.import_message = QLabel()
        self.import_message.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(load)
        row.addWidget(self.import_button)
        row.addStretch(1)
        layout = QVBoxLayout(box)
        layout.addLayout(row)
        layout.addWidget(self.import_message)
        return box

    def _build_hub(self) -> QGroupBox:
        box = QGroupBox("Download from the Hugging Face hub")
        self.repo_edit = QLineEdit()
        self.repo_edit.setPlaceholderText("organisation/model-name")
        self.repo_edit.setToolTip("The hub repository that holds the DGS Desktop checkpoint")
        self.revision_edit = QLineEdit()
        self.revision_edit.setPlaceholderText("main (or a tag / commit for a pinned version)")
        self.revision_edit.setToolTip("Branch, tag or commit; pin a commit for reproducible results")
        self.download_button = QPushButton("Download")
        self.download_button.clicked.connect(lambda: self.start_download(self.repo_edit.text(), self.revision_edit.text()))
        self.cancel_download_button = QPushButton("Cancel")
        self.cancel_download_button.setEnabled(False)
        self.cancel_download_button.clicked.connect(self.cancel_download)
        self.download_progress = QProgressBar()
        self.download_progress.setVisible(False)
        self.hub_message = QLabel()
        self.hub_message.setWordWrap(True)
        self.hub_message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form = QFormLayout()
        form.addRow("Repository:", self.repo_edit)
        form.addRow("Revision:", self.revision_edit)
        buttons = QHBoxLayout()
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.cancel_download_button)
        buttons.addWidget(self.download_progress, 1)
        layout = QVBoxLayout(box)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.hub_message)
        return box

    def _build_recent(self) -> QGroupBox:
        box = QGroupBox("Recent models")
        self.recent_list = QListWidget()
        self.recent_list.setToolTip("Double-click to use a model again")
        self.recent_list.itemDoubleClicked.connect(lambda item: self._request(item.text()))
        self.recent_list.setMaximumHeight(110)
        use = QPushButton("Use selected")
        use.clicked.connect(lambda: self.recent_list.currentItem() and self._request(self.recent_list.currentItem().text()))
        layout = QVBoxLayout(box)
        layout.addWidget(self.recent_list)
        layout.addWidget(use, 0, Qt.AlignmentFlag.AlignRight)
        return box

    def show_section(self, name: str) -> None:
        if name == "hub":
            self.repo_edit.setFocus()
        elif name == "import":
            self.import_button.setFocus()

    # ----------------------------------------------------------------------------- refresh
    def _refresh_active(self, *args) -> None:
        session = self.controller.session
        self.state_label.setText(f"State: {self.controller.state}" + (
            f" — {session.checkpoint.short_id} on {session.device_label} ({session.scanner.precision})"
            if session is not None else ""))
        self.manifest_view.setPlainText(manifest_summary(session.checkpoint) if session is not None
                                        else "No model is active.")
        if session is not None and session.checkpoint.source.startswith(CHECKPOINT_SCHEME):
            self._fetch_card(session.checkpoint)
        self.device_combo.clear()
        for spec, label in self.controller.devices:
            self.device_combo.addItem(label, spec)
        index = self.device_combo.findData(self.settings.device)
        self.device_combo.setCurrentIndex(max(0, index))
        self.precision_combo.setCurrentIndex(max(0, self.precision_combo.findData(self.settings.precision)))
        if not self.controller.libraries_ready:
            self.device_combo.setToolTip("CUDA devices are listed once the libraries have loaded")
        self._refresh_recent()

    def _fetch_card(self, checkpoint) -> None:
        """A hub model's card metrics, fetched off the GUI thread (from the cache when offline)."""
        task = Task(card_text, checkpoint.source)
        task.signals.succeeded.connect(lambda text: self._show_card(checkpoint, text))
        start_task(task, self._jobs, owner=self)

    def _show_card(self, checkpoint, text: str) -> None:
        session = self.controller.session
        if session is not None and session.checkpoint is checkpoint:
            self.manifest_view.setPlainText(manifest_summary(checkpoint, card=text))

    def _refresh_recent(self) -> None:
        self.recent_list.clear()
        self.recent_list.addItems(self.settings.recent_models)

    def _request(self, spec) -> None:
        self.load_requested.emit(spec, self.device_combo.currentData() or "auto")

    def _precision_chosen(self, index: int) -> None:
        self.settings.precision = self.precision_combo.itemData(index)
        session = self.controller.session
        if session is not None and self.controller.state == READY:
            self.load_requested.emit(session.checkpoint, self.settings.device)  # reload in the new precision

    def _device_chosen(self, index: int) -> None:
        spec = self.device_combo.itemData(index)
        self.settings.device = spec
        session = self.controller.session
        if session is not None and self.controller.state == READY:
            self.load_requested.emit(session.checkpoint, spec)  # reload on the new device

    # ------------------------------------------------------------------------------ actions
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a checkpoint folder", self.settings.last_folder)
        if folder:
            self._request(folder)

    def choose_pth(self) -> None:
        pth, _ = QFileDialog.getOpenFileName(self, "The authors' weights", self.settings.last_folder,
                                             "PyTorch weights (*.pth *.pt);;All files (*)")
        if pth:
            self.start_import(pth, str(models_folder() / Path(pth).stem))

    def start_import(self, pth: str, out_dir: str) -> None:
        self.import_message.setStyleSheet("")
        self.import_message.setText(f"Importing {pth} into {out_dir}…")
        self.import_button.setEnabled(False)
        task = Task(import_pth, pth, out_dir)
        task.signals.succeeded.connect(self._imported)
        task.signals.failed.connect(lambda message: self._show(self.import_message, f"Import failed: {message}", True))
        task.signals.finished.connect(lambda: self.import_button.setEnabled(True))
        start_task(task, self._jobs, owner=self)

    def _imported(self, out_dir: str) -> None:
        self._show(self.import_message, f"Imported into {out_dir}; loading it now.", False)
        self._request(out_dir)

    def start_download(self, repo_id: str, revision: str) -> None:
        if not repo_id.strip() or "/" not in repo_id:
            self._show(self.hub_message, "Enter the repository as organisation/model-name.", True)
            return
        spec = hub_spec(repo_id, revision)
        self._show(self.hub_message, f"Contacting the hub for {spec}…", False)
        self.download_progress.setRange(0, 0)
        self.download_progress.setVisible(True)
        self.download_button.setEnabled(False)
        self.cancel_download_button.setEnabled(True)
        task = Task(download_from_hub, spec, pass_hooks=True)
        task.signals.progress.connect(self._download_progress)
        task.signals.succeeded.connect(self._downloaded)
        task.signals.failed.connect(lambda message: self._show(
            self.hub_message, "Download cancelled." if task.cancel_event.is_set() else f"Download failed: {message}",
            not task.cancel_event.is_set()))
        task.signals.finished.connect(self._download_finished)
        self._download = task
        start_task(task, self._jobs, owner=self)

    def cancel_download(self) -> None:
        if self._download is not None:
            self._download.cancel()
            self._show(self.hub_message, "Cancelling the download…", False)

    def _download_progress(self, update) -> None:
        done, total, message = update
        if total:
            self.download_progress.setRange(0, 1000)
            self.download_progress.setValue(int(1000 * done / total))
        self.hub_message.setStyleSheet("")
        self.hub_message.setText(f"{message + ' — ' if message else ''}{_human_bytes(done)} of {_human_bytes(total)}")

    def _downloaded(self, checkpoint) -> None:
        self._show(self.hub_message, f"Downloaded {checkpoint.source}; loading it now.", False)
        self.load_requested.emit(checkpoint, self.device_combo.currentData() or "auto")

    def _download_finished(self) -> None:
        self._download = None
        self.download_progress.setVisible(False)
        self.download_button.setEnabled(True)
        self.cancel_download_button.setEnabled(False)

    @staticmethod
    def _show(label: QLabel, text: str, error: bool) -> None:
        label.setStyleSheet("color: #b71c1c" if error else "")
        label.setText(text)

    def closeEvent(self, event) -> None:  # noqa: N802
        if self._download is not None:
            self._download.cancel()
        super().closeEvent(event)
