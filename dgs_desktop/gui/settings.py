"""Persistent settings (QSettings): last folders (evidence, output), recent models, thresholds, device, geometry.

`DGS_DESKTOP_SETTINGS=/path/file.ini` points the app at a private INI file; tests and the
screenshot run use it so they never read or change the user's real settings.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QByteArray, QSettings

from ..envknobs import path_knob

ORGANIZATION = "DGS Desktop"
APPLICATION = "dgs-desktop"
SETTINGS_ENV = "DGS_DESKTOP_SETTINGS"
MAX_RECENT_MODELS = 8


class AppSettings:
    def __init__(self, path: str | None = None):
        where = path or path_knob(SETTINGS_ENV)
        if where:
            self._qs = QSettings(str(where), QSettings.Format.IniFormat)
        else:
            self._qs = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)

    def sync(self) -> None:
        self._qs.sync()

    # --------------------------------------------------------------------------- values
    def _get_str(self, key: str, default: str = "") -> str:
        value = self._qs.value(key, default)
        return default if value is None else str(value)

    @property
    def last_folder(self) -> str:
        return self._get_str("paths/last_folder", os.path.expanduser("~"))

    @last_folder.setter
    def last_folder(self, folder: str) -> None:
        self._qs.setValue("paths/last_folder", folder)

    @property
    def output_folder(self) -> str:
        """The last folder a case, CSV or report was saved into outside the evidence ("" at first)."""
        return self._get_str("paths/output_folder")

    @output_folder.setter
    def output_folder(self, folder: str) -> None:
        self._qs.setValue("paths/output_folder", folder)

    @property
    def active_model(self) -> str:
        return self._get_str("model/active")

    @active_model.setter
    def active_model(self, spec: str) -> None:
        self._qs.setValue("model/active", spec)

    @property
    def device(self) -> str:
        return self._get_str("model/device", "auto") or "auto"

    @device.setter
    def device(self, spec: str) -> None:
        self._qs.setValue("model/device", spec)

    @property
    def precision(self) -> str:
        """auto, fp32 or bf16 (`--precision` of the headless scan)."""
        return self._get_str("model/precision", "auto") or "auto"

    @precision.setter
    def precision(self, spec: str) -> None:
        self._qs.setValue("model/precision", spec)

    @property
    def recent_models(self) -> list[str]:
        value = self._qs.value("model/recent", [])
        if isinstance(value, str):  # QSettings returns a bare string for a one-item list
            value = [value]
        if not isinstance(value, (list, tuple)):  # None when empty; nothing else is a list of models
            return []
        return [str(v) for v in value if v]

    def remember_model(self, spec: str) -> None:
        recent = [spec] + [s for s in self.recent_models if s != spec]
        self._qs.setValue("model/recent", recent[:MAX_RECENT_MODELS])

    def threshold_for(self, checkpoint_sha256: str) -> float | None:
        """The user's threshold for this exact checkpoint (None: use the checkpoint's own)."""
        value = self._qs.value(f"thresholds/{checkpoint_sha256[:16]}")
        try:
            return None if value is None else float(value)
        except (TypeError, ValueError):
            return None

    def set_threshold_for(self, checkpoint_sha256: str, threshold: float | None) -> None:
        key = f"thresholds/{checkpoint_sha256[:16]}"
        if threshold is None:
            self._qs.remove(key)
        else:
            self._qs.setValue(key, float(threshold))

    def geometry(self, name: str) -> QByteArray | None:
        value = self._qs.value(f"window/{name}")
        return value if isinstance(value, QByteArray) else None

    def set_geometry(self, name: str, state: QByteArray) -> None:
        self._qs.setValue(f"window/{name}", state)
