"""The verdict threshold: one object that holds it, and the control that edits it.

`Threshold` is the single source of the active value and of the reference it is measured
against (the model's, the calibration's, or the default). Everything that depends on it (the
table, the histogram, the detail pane, the saved settings, the case's log) subscribes to
`changed`, so no caller has to remember to tell each of them.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QSlider, QToolButton, QWidget

from ..verdict import DEFAULT_THRESHOLD, RULE_TEXT

STEP = 0.0005  # the control shows 3 decimals: closer than this is the same threshold
SLIDER_STEPS = 1000


class Threshold(QObject):
    changed = Signal(float, str)  # the value, and why it changed ("" for the analyst's own edit)
    reference_changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.value = DEFAULT_THRESHOLD
        # What the value is compared with, and where that comes from: "default", "model", "calibration".
        self.reference: tuple[float, str] = (DEFAULT_THRESHOLD, "default")

    def set(self, value: float, exact: bool = False, why: str = "") -> None:
        """`exact`: a calibrated threshold keeps every digit (the control shows it rounded);
        otherwise the value is rounded to the control's 3 decimals."""
        self.value = float(value) if exact else round(float(value), 3)
        self.changed.emit(self.value, why)

    def set_reference(self, value: float, source: str) -> None:
        self.reference = (round(float(value), 3), source)
        self.reference_changed.emit()

    @property
    def differs(self) -> bool:
        """The active value is not the reference's (the window says so beside the control)."""
        return abs(self.value - self.reference[0]) > STEP

    def reset(self) -> None:
        self.set(self.reference[0], why=f"reset to the {self.reference[1]}'s value")


class ThresholdControl(QWidget):
    """Slider, spin box, and — only while the value is not the reference's — a note and Reset."""

    def __init__(self, threshold: Threshold, parent=None):
        super().__init__(parent)
        self.setObjectName("thresholdControl")
        self.threshold = threshold
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setMinimumWidth(70)
        self.slider.setMaximumWidth(140)
        self.spin = QDoubleSpinBox()
        self.spin.setRange(0.0, 1.0)
        self.spin.setDecimals(3)
        self.spin.setSingleStep(0.01)
        tip = f"An image is called fake when P(fake) is above this threshold ({RULE_TEXT}). Verdicts update at once."
        for widget in (self.slider, self.spin):
            widget.setToolTip(tip)
        self.slider.valueChanged.connect(lambda value: self.spin.setValue(value / SLIDER_STEPS))
        self.spin.valueChanged.connect(self._edited)
        self.note = QLabel()
        self.note.setObjectName("thresholdNote")
        self.note.setStyleSheet("color: #bf360c; font-weight: bold")
        self.reset = QToolButton()
        self.reset.setObjectName("thresholdReset")
        self.reset.setText("Reset")
        self.reset.clicked.connect(threshold.reset)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 0, 0, 0)
        label = QLabel("&Threshold:")
        label.setBuddy(self.spin)
        for part in (label, self.slider, self.spin, self.note, self.reset):
            layout.addWidget(part)
        threshold.changed.connect(self._show_value)
        threshold.reference_changed.connect(self._show_note)
        self._show_value(threshold.value)

    def _edited(self, value: float) -> None:
        if abs(value - self.threshold.value) > 1e-9:  # not the echo of a value set elsewhere
            self.threshold.set(value)

    def _show_value(self, value: float, why: str = "") -> None:
        self.spin.blockSignals(True)
        self.spin.setValue(value)
        self.spin.blockSignals(False)
        self.slider.blockSignals(True)
        self.slider.setValue(round(value * SLIDER_STEPS))
        self.slider.blockSignals(False)
        self._show_note()

    def _show_note(self) -> None:
        value, source = self.threshold.reference
        differs = self.threshold.differs
        self.note.setText(f"≠ {source} {value:.3f}" if differs else "")
        self.note.setToolTip(
            f"The active threshold {self.threshold.value:.3f} is not the {source}'s own value {value:.3f}: "
            f"verdicts differ from a scan with the {source}'s threshold." if differs else "")
        self.reset.setToolTip(f"Set the threshold back to the {source}'s value {value:.3f}")
        self.note.setVisible(differs)
        self.reset.setVisible(differs)
