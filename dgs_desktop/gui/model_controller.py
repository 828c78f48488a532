"""Loads the ML stack and the active model in the background and says what state it is in.

States: loading libraries -> no model | loading model -> ready | failed. The window shows
each one; nothing here blocks the GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from .workers import Task, start_task

if TYPE_CHECKING:  # the ML stack is imported off the GUI thread (load_ml_stack)
    import torch

    from ..detector.manifest import Checkpoint
    from ..scan.engine import Scanner

LOADING_LIBRARIES, NO_MODEL, LOADING_MODEL, READY, FAILED = (
    "loading libraries", "no model", "loading model", "ready", "failed")


def model_warning(checkpoint) -> str:
    """Why this model's verdicts mean nothing (the rule lives with the manifest), or ""."""
    from ..detector.manifest import model_warning as manifest_warning

    return manifest_warning(checkpoint.manifest)


@dataclass
class ModelSession:
    """Everything a scan needs, built off the GUI thread."""

    spec: str  # what to remember in settings: a folder or hf:org/name@rev
    checkpoint: Checkpoint
    scanner: Scanner
    device: torch.device
    device_label: str  # describe_device(device), as the CSV records it

    @property
    def scored_on(self) -> str:
        """Device and precision. Scores from another device or precision differ in the last
        bits, so rows that were scored elsewhere are scored again (never mixed in one table)."""
        return f"{self.device_label} {self.scanner.precision}"


def load_ml_stack() -> list[tuple[str, str]]:
    """Imports torch and the scoring code (seconds); returns the device choices. open_clip and
    peft are not needed to score (see `detector.scorer`), so they are imported only if a
    checkpoint needs them."""
    import torch  # noqa: F401

    from ..detector import scorer  # noqa: F401
    from ..detector.device import list_devices
    from ..scan import csvio, engine  # noqa: F401

    return list_devices()


def load_session(spec, device_spec: str, precision: str = "auto", report=None, cancelled=None) -> ModelSession:
    """Verifies and loads a model, then runs one forward pass (so the first image is not slowed
    by the backend's set-up); `report((stage, fraction))` follows `checkpoint.LOAD_STAGES`."""
    import torch

    from ..detector.checkpoint import FIRST_FORWARD, VERIFYING
    from ..detector.device import autocast_for, describe_device, resolve_device, resolve_precision
    from ..detector.manifest import Checkpoint
    from ..detector.patches import MOSAIC_SIZE
    from ..detector.resolve import resolve_checkpoint
    from ..detector.scorer import load_scorer
    from ..scan.engine import Scanner

    def stage(name: str, fraction: float) -> None:
        if report is not None:
            report((name, fraction))

    device = resolve_device(device_spec or "auto")
    resolve_precision(device, precision)  # an impossible choice is refused before the model loads
    stage(VERIFYING, 0.0)
    checkpoint = spec if isinstance(spec, Checkpoint) else \
        resolve_checkpoint(spec, verify_progress=lambda fraction: stage(VERIFYING, fraction))
    detector = load_scorer(checkpoint, device, on_stage=stage)  # the scan's network: the same scores
    stage(FIRST_FORWARD, 0.0)
    with torch.no_grad(), autocast_for(device, precision):
        detector(torch.zeros(1, 3, MOSAIC_SIZE, MOSAIC_SIZE, device=device))
    stage(FIRST_FORWARD, 1.0)
    scanner = Scanner(detector, device, precision=precision)  # default batch size: the same scores as the CLI
    return ModelSession(spec=checkpoint.source, checkpoint=checkpoint, scanner=scanner, device=device,
                        device_label=describe_device(device))


class ModelController(QObject):
    state_changed = Signal(str, str)  # state, plain-words message
    session_changed = Signal(object)  # ModelSession
    load_failed = Signal(str)  # plain words
    load_stage = Signal(str, float)  # a stage of checkpoint.LOAD_STAGES, the fraction of it done

    def __init__(self, parent=None):
        super().__init__(parent)
        self.state = LOADING_LIBRARIES
        self.session: ModelSession | None = None
        self.devices: list[tuple[str, str]] = [("auto", "Auto"), ("cpu", "CPU")]
        self.libraries_ready = False
        self._pending: tuple | None = None
        self._jobs: set = set()
        self._load_id = 0

    def _set_state(self, state: str, message: str) -> None:
        self.state = state
        self.state_changed.emit(state, message)

    def start(self) -> None:
        self._set_state(LOADING_LIBRARIES, "Loading the detector libraries (PyTorch)…")
        task = Task(load_ml_stack)
        task.signals.succeeded.connect(self._libraries_loaded)
        task.signals.failed.connect(lambda message: self._fail(f"The detector libraries could not be loaded: {message}"))
        start_task(task, self._jobs, owner=self)

    def _libraries_loaded(self, devices) -> None:
        self.libraries_ready = True
        self.devices = devices
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self.load(*pending)
        elif self.session is None:
            self._set_state(NO_MODEL, "No model loaded.")

    def load(self, spec, device: str = "auto", precision: str = "auto") -> None:
        """Loads a checkpoint (folder, hf: spec or a Checkpoint) on a device, in the background."""
        if not self.libraries_ready:
            self._pending = (spec, device, precision)
            return
        self._load_id += 1
        load_id = self._load_id
        name = getattr(spec, "source", spec)
        self._set_state(LOADING_MODEL, f"Loading the model {name}…")
        task = Task(load_session, spec, device, precision, pass_hooks=True)
        def progress(update: tuple) -> None:
            if load_id == self._load_id:
                self.load_stage.emit(*update)

        task.signals.progress.connect(progress)
        task.signals.succeeded.connect(lambda session: self._loaded(load_id, session))
        task.signals.failed.connect(lambda message: self._load_failed(load_id, message))
        start_task(task, self._jobs, owner=self)

    def _loaded(self, load_id: int, session: ModelSession) -> None:
        if load_id != self._load_id:
            return  # a newer load request superseded this one
        self.session = session
        self._set_state(READY, f"Model {session.checkpoint.short_id} on {session.device_label} ({session.scanner.precision})")
        self.session_changed.emit(session)

    def _load_failed(self, load_id: int, message: str) -> None:
        if load_id != self._load_id:
            return
        self.load_failed.emit(message)
        if self.session is not None:  # keep using the model that worked
            self._set_state(READY, f"Model {self.session.checkpoint.short_id} on {self.session.device_label} ({self.session.scanner.precision})")
        else:
            self._set_state(NO_MODEL, f"The model could not be loaded: {message}")

    def _fail(self, message: str) -> None:
        self.load_failed.emit(message)
        self._set_state(FAILED, message)
