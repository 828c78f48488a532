"""What loading a model or a calibration changes in the window.

`ModelController` loads models off the GUI thread; this decides what a new model means for
the work on screen: its warning banner, the threshold it brings (the case's, the analyst's
saved value, or the model's own — never silently another), a calibration made with another
model cleared, and — over a case another model scored — a question before anything is
scored again. It also opens the model manager and the calibration dialog.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from .dialogs import show_error
from .model_controller import READY, model_warning


class ModelFlow(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.manager_dialog = None
        self.calibration_dialog = None
        self.rescore_box: QMessageBox | None = None  # the open "Re-score the case?" question
        controller = window.controller
        controller.state_changed.connect(self._state_changed)
        controller.session_changed.connect(self._session_changed)
        controller.load_failed.connect(self._load_failed)
        window.verdict_threshold.changed.connect(self._remember_threshold)
        self._state_changed(controller.state, "Loading the detector libraries…")

    # ---------------------------------------------------------------------------- loading
    def load(self, spec, device: str | None = None, precision: str | None = None) -> None:
        settings = self.window.settings
        settings.device, settings.precision = device or settings.device, precision or settings.precision
        self.window.controller.load(spec, settings.device, settings.precision)

    def choose_folder(self) -> None:
        window = self.window
        folder = QFileDialog.getExistingDirectory(window, "Choose a checkpoint folder", window.settings.last_folder)
        if folder:
            self.load(folder)

    def open_manager(self, focus: str = "") -> None:
        from .model_manager import ModelManagerDialog

        if self.manager_dialog is None:
            self.manager_dialog = ModelManagerDialog(self.window.controller, self.window.settings, self.window)
            self.manager_dialog.load_requested.connect(self.load)
        self.manager_dialog.show_section(focus if isinstance(focus, str) else "")
        self.manager_dialog.show()
        self.manager_dialog.raise_()
        self.manager_dialog.activateWindow()

    def fill_recent_menu(self) -> None:
        menu = self.window.recent_menu
        menu.clear()
        recent = self.window.settings.recent_models
        for spec in recent:
            menu.addAction(spec, lambda checked=False, s=spec: self.load(s))
        if not recent:
            menu.addAction("(none yet)").setEnabled(False)

    # ------------------------------------------------------------------ a model arrives
    def _state_changed(self, state: str, message: str) -> None:
        window = self.window
        window.banner.show_state(state, message)
        window.model_label.setText(message if state == READY else state.capitalize())
        window.model_label.setToolTip(message)

    def _session_changed(self, session) -> None:
        window = self.window
        window.settings.active_model = session.spec
        window.settings.remember_model(session.spec)
        self.fill_recent_menu()
        warning = model_warning(session.checkpoint)
        window.model_warning.setText(f"⚠ {warning}" if warning else "")
        window.model_warning.setVisible(bool(warning))
        if warning:
            window.model_label.setText(f"⚠ {window.model_label.text()}")
        calibration = window.model.calibration
        if calibration is not None and calibration.checkpoint_sha256 != session.checkpoint.sha256:
            window.model.set_calibration(None)  # a calibration belongs to the model it was made with
            window.cases.calibration_sha256 = ""
            window.show_status("Calibration cleared: it was made with another model.")
        scored_by_others = [row for row in window.model.rows
                            if row.result is not None and row.checkpoint_sha256 != session.checkpoint.sha256]
        if window.cases.case is not None and scored_by_others:
            self.ask_rescore(session, len(scored_by_others))  # nothing in the case changes before the answer
            return
        self._use(session)

    def ask_rescore(self, session, count: int) -> None:
        """Another model was loaded over a case scored by a different one: the analyst decides
        whether it scores the files again (the stored scores stay in the case's history)."""
        cases = self.window.cases
        info = cases.case.info()
        box = QMessageBox(QMessageBox.Icon.Question, "Re-score the case with another model?",
                          f"{count} file(s) in case {cases.name} were scored by another model "
                          f"({info.checkpoint or info.checkpoint_sha256[:12]}). Scoring them with {session.spec} "
                          f"makes its scores and threshold the case's current ones; the stored scores stay in the "
                          "case's history (shown in the report).",
                          QMessageBox.StandardButton.NoButton, self.window)
        keep = box.addButton("Keep the stored scores", QMessageBox.ButtonRole.RejectRole)
        rescore = box.addButton("Re-score with this model", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(keep)
        box.setEscapeButton(keep)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def answered(*_):
            self.rescore_box = None
            if box.clickedButton() is rescore:
                cases.log("re-score", f"chose to re-score {count} file(s) with {session.spec} (scored by "
                          f"{info.checkpoint or info.checkpoint_sha256})")
                self._use(session)
            elif info.checkpoint:  # back to the model that made the stored scores
                cases.log("kept scores", f"kept the stored scores of {info.checkpoint} instead of re-scoring "
                          f"with {session.spec}")
                self.window.show_status(f"Kept the stored scores; loading their model {info.checkpoint} again.")
                self.load(info.checkpoint)

        box.finished.connect(answered)
        self.rescore_box = box
        box.open()

    def _use(self, session) -> None:
        window = self.window
        case_threshold = window.cases.model_changed(session)
        stored = window.settings.threshold_for(session.checkpoint.sha256)
        own = session.checkpoint.threshold
        threshold = window.verdict_threshold
        threshold.set_reference(own, "model")
        if case_threshold is not None:
            threshold.set(case_threshold, why="the case's value for this model")
        elif stored is not None:
            threshold.set(stored, why="your saved value for this model")
        else:
            threshold.set(own, why="the model's value")
        if threshold.differs:  # never silently: say where the threshold came from
            origin = "the case's" if case_threshold is not None else "your saved"
            window.show_status(f"Threshold {threshold.value:.3f} is {origin} value for this model; the model's own "
                               f"is {own:.3f} (Reset beside the threshold).")
        # Rows another model scored are scanned again so the table and exports never mix models.
        window.model.selections.clear()
        window.scans.set_scanner(session.scanner, session.checkpoint.sha256, session.scored_on, session.spec)
        window.refresh_detail(force=True)

    def _remember_threshold(self, threshold: float, why: str) -> None:
        """The analyst's threshold is saved per model, unless it is the model's own."""
        session = self.window.controller.session
        if session is not None:
            own = session.checkpoint.threshold
            self.window.settings.set_threshold_for(session.checkpoint.sha256,
                                                   None if abs(threshold - own) < 1e-9 else threshold)

    def _load_failed(self, message: str) -> None:
        window = self.window
        show_error(window, "Model not loaded", message)
        session = window.controller.session
        if session is not None:  # rows from another model (e.g. a reopened case) are re-scored
            window.scans.set_scanner(session.scanner, session.checkpoint.sha256, session.scored_on, session.spec)

    # ------------------------------------------------------------------------ calibration
    def open_calibration(self) -> None:
        from .calibration_dialog import CalibrationDialog

        if self.calibration_dialog is None:
            self.calibration_dialog = CalibrationDialog(self.window)
            self.calibration_dialog.calibration_chosen.connect(self.set_calibration)
        self.calibration_dialog.refresh()
        self.calibration_dialog.show()
        self.calibration_dialog.raise_()

    def set_calibration(self, calibration) -> None:
        """Uses `calibration`'s threshold and reference scores (None: back to the model's threshold)."""
        window = self.window
        window.model.set_calibration(calibration)
        window.cases.calibration_sha256 = "" if calibration is None else calibration.sha256
        session = window.controller.session
        threshold = window.verdict_threshold
        if calibration is not None:
            window.cases.log("calibration", f"calibration sha256 {calibration.sha256} loaded: "
                             f"{calibration.summary()}", calibration_sha256=calibration.sha256)
            threshold.set_reference(calibration.threshold, "calibration")
            threshold.set(calibration.threshold, exact=True, why="the calibration's")
            warning = calibration.warning()
            window.show_status(f"Calibration loaded: {calibration.summary()}" + (f" ⚠ {warning}" if warning else ""))
        elif session is not None:
            window.cases.log("calibration", "calibration cleared")
            threshold.set_reference(session.checkpoint.threshold, "model")
            threshold.set(session.checkpoint.threshold, why="the model's value (calibration cleared)")
            window.show_status("Calibration cleared: the model's threshold applies.")
        if self.calibration_dialog is not None:
            self.calibration_dialog.refresh()
