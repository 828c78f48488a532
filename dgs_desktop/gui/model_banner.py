"""The banner above the table: what the model is doing; with no model, the three ways to get one."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout

from .model_controller import FAILED, LOADING_LIBRARIES, LOADING_MODEL, NO_MODEL, READY


class ModelBanner(QFrame):
    """Says what the model is doing; with no model, the three ways to get one."""

    def __init__(self, window):
        super().__init__(window)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName("modelBanner")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.RichText)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setFixedWidth(260)  # room for 'building the network (2 of 4)'
        self.load_button = QPushButton("Load checkpoint folder…")
        self.load_button.setToolTip("A folder with dgs_checkpoint.json, e.g. made by dgs-desktop-train")
        self.import_button = QPushButton("Import authors' weights (.pth)…")
        self.import_button.setToolTip("Convert the DGS-Net authors' released model_epoch_step2.pth (never unpickled)")
        self.hub_button = QPushButton("Download from the hub…")
        self.hub_button.setToolTip("Download a lab's checkpoint from the Hugging Face hub by repo id and revision")
        # Looked up when clicked: the window's model flow is made after its widgets.
        self.load_button.clicked.connect(lambda: window.models.choose_folder())
        self.import_button.clicked.connect(lambda: window.models.open_manager("import"))
        self.hub_button.clicked.connect(lambda: window.models.open_manager("hub"))
        buttons = QHBoxLayout()
        for button in (self.load_button, self.import_button, self.hub_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        top = QHBoxLayout()
        top.addWidget(self.busy)
        top.addWidget(self.message, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(buttons)
        self._buttons = (self.load_button, self.import_button, self.hub_button)
        window.controller.load_stage.connect(self.show_stage)

    def show_stage(self, stage: str, fraction: float) -> None:
        """The loading model's stage as a determinate bar: 'building the network (2 of 4)'."""
        from ..detector.checkpoint import LOAD_STAGES

        index = LOAD_STAGES.index(stage) if stage in LOAD_STAGES else 0
        self.busy.setRange(0, 1000)
        self.busy.setValue(int(1000 * (index + min(max(fraction, 0.0), 1.0)) / len(LOAD_STAGES)))
        self.busy.setFormat(f"{stage} ({index + 1} of {len(LOAD_STAGES)})")
        self.busy.setTextVisible(True)
        self.busy.setToolTip(f"Loading the model: {stage}")

    def show_state(self, state: str, message: str) -> None:
        self.busy.setVisible(state in (LOADING_LIBRARIES, LOADING_MODEL))
        self.busy.setRange(0, 0)  # until a loading stage is heard: an indeterminate bar
        self.busy.setTextVisible(False)
        needs_model = state in (NO_MODEL, FAILED)
        for button in self._buttons:
            button.setVisible(needs_model)
        if state == NO_MODEL:
            detail = "" if message == "No model loaded." else f"<br><span style='color:#b71c1c'>{message}</span>"
            self.message.setText(
                "<b>No detector model yet.</b> Get one in one of three ways: load a checkpoint folder "
                "(for example one trained with <code>dgs-desktop-train</code>), import the DGS-Net authors' "
                "released weights, or download a lab's checkpoint from the Hugging Face hub. "
                "Files you add now are scanned as soon as a model is ready." + detail)
        else:
            self.message.setText(message)
        self.setVisible(state != READY)
