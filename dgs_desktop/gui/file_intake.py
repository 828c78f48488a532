"""Files coming into the window: dropped, chosen in a dialog, or passed on the command line.

Discovery runs off the GUI thread (a large folder must not freeze the window); the new files
are listed, go into the open case, and are scanned. The folders the analyst added are the
evidence: save dialogs open outside them and warn before writing inside (output_place).
"""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog

from ..scan.discover import IMAGE_SUFFIXES
from .dialogs import show_error
from .workers import Task, discover_files, start_task

IMAGE_FILTER = f"Images ({' '.join('*' + s for s in sorted(IMAGE_SUFFIXES))});;All files (*)"


def local_paths(mime_data) -> list[str]:
    """The local files and folders of a drag (remote URLs are not files to scan)."""
    if not mime_data.hasUrls():
        return []
    return [url.toLocalFile() for url in mime_data.urls() if url.isLocalFile()]


class FileIntake(QObject):
    files_added = Signal(int)  # number of new rows, after every add (0 when all were listed)

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.added_folders: set[str] = set()  # the folders the analyst added (the evidence)
        self._jobs: set = set()

    def choose_files(self) -> None:
        settings = self.window.settings
        files, _ = QFileDialog.getOpenFileNames(self.window, "Add images", settings.last_folder, IMAGE_FILTER)
        if files:
            settings.last_folder = os.path.dirname(files[0])
            self.add_paths(files)

    def choose_folder(self) -> None:
        settings = self.window.settings
        folder = QFileDialog.getExistingDirectory(self.window, "Add a folder (scanned with its subfolders)",
                                                  settings.last_folder)
        if folder:
            settings.last_folder = folder
            self.add_paths([folder])

    def add_paths(self, paths: list[str]) -> None:
        """Finds the files under `paths` off the GUI thread, lists the new ones and scans them."""
        self.window.progress_label.setText("Looking for files…")
        for path in paths:
            path = os.path.abspath(os.path.expanduser(str(path)))
            self.added_folders.add(path if os.path.isdir(path) else os.path.dirname(path))
        task = Task(discover_files, [str(p) for p in paths])
        task.signals.succeeded.connect(self._found)
        task.signals.failed.connect(self._failed)
        start_task(task, self._jobs, owner=self)

    def _failed(self, message: str) -> None:
        show_error(self.window, "Cannot add files", message)
        self.files_added.emit(0)

    def _found(self, files: list) -> None:
        window = self.window
        new = window.model.add_files(files)
        skipped = len(files) - len(new)
        window.show_status(f"Added {len(new)} file(s)" + (f" ({skipped} already listed)." if skipped else "."))
        window.cases.files_added(new)
        if new and window.table.currentIndex().row() < 0:
            window.table.selectRow(0)
        self.files_added.emit(len(new))
        window.scans.start_next()

    def evidence_folders(self) -> set[str]:
        """Every scanned folder: those added and those holding a listed file."""
        return self.added_folders | {row.folder for row in self.window.model.rows}

    def clear(self) -> None:
        self.added_folders.clear()

    def cancel(self) -> None:
        for job in list(self._jobs):
            job.cancel()
