"""Where the window writes cases, CSVs and reports: never into the evidence unasked.

Save dialogs open in the analyst's case folder (the last folder they saved into that is not
inside a scanned folder; at first Documents/"DGS Desktop cases"). A path inside a scanned
folder is written only after a warning the analyst answers; discovery skips our own files
(`dgs_desktop.scan.discover.is_own_file`), so a case saved there is not listed as evidence.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QFileDialog, QMessageBox

CASES_FOLDER_NAME = "DGS Desktop cases"


def default_cases_folder() -> str:
    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    return os.path.join(documents or os.path.expanduser("~"), CASES_FOLDER_NAME)


def containing_folder(path: str, folders) -> str | None:
    """The folder of `folders` that holds `path` (after resolving links), or None."""
    real = os.path.realpath(path)
    for folder in folders:
        root = os.path.realpath(folder)
        try:
            if os.path.commonpath([real, root]) == root:
                return folder
        except ValueError:  # another drive
            continue
    return None


def output_folder(settings, evidence) -> str:
    """The folder a save dialog opens in: the remembered one unless it is now inside the
    evidence or gone, else the default case folder (created, as a dialog needs it to exist)."""
    remembered = settings.output_folder
    if remembered and os.path.isdir(remembered) and containing_folder(remembered, evidence) is None:
        return remembered
    folder = default_cases_folder()
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return os.path.expanduser("~")
    return folder


def confirm_inside_evidence(parent, path: str, folder: str) -> QMessageBox.ButtonRole:
    """Asks before writing into a scanned folder. AcceptRole: write there; ResetRole: choose
    another place; RejectRole: do not write."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Write inside the evidence?",
                      f"{path}\n\nis inside the scanned folder {folder}. Writing there adds a file to the evidence "
                      f"(it is not scanned as evidence itself). Write there anyway?",
                      QMessageBox.StandardButton.NoButton, parent)
    other = box.addButton("Choose another place…", QMessageBox.ButtonRole.ResetRole)
    write = box.addButton("Write inside the evidence", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(other)
    box.setObjectName("insideEvidenceBox")
    box.exec()  # after the (modal) save dialog, like it; the event loop keeps running
    clicked = box.clickedButton()
    return (QMessageBox.ButtonRole.AcceptRole if clicked is write else
            QMessageBox.ButtonRole.ResetRole if clicked is other else QMessageBox.ButtonRole.RejectRole)


def choose_output_path(window, title: str, file_name: str, filters: str,
                       options=QFileDialog.Option(0)) -> tuple[str, str]:
    """(path, chosen filter) from a save dialog that opens outside the evidence; ("", "") when
    the analyst cancels. A path inside a scanned folder needs their yes first."""
    evidence = window.intake.evidence_folders()
    folder = output_folder(window.settings, evidence)
    while True:
        path, chosen = QFileDialog.getSaveFileName(window, title, os.path.join(folder, file_name), filters,
                                                   options=options)
        if not path:
            return "", ""
        inside = containing_folder(path, evidence)
        if inside is None:
            window.settings.output_folder = os.path.dirname(path)
            return path, chosen
        answer = confirm_inside_evidence(window, path, inside)
        if answer == QMessageBox.ButtonRole.AcceptRole:
            return path, chosen
        if answer == QMessageBox.ButtonRole.RejectRole:
            return "", ""
        file_name = os.path.basename(path)  # choose another place, same name
