"""The app's persistent settings (QSettings, INI format in the user's config folder)."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings

ORGANIZATION = "SqueezeLens"
APPLICATION = "SqueezeLens"
MAX_RECENT_MODELS = 8
TOP_K_RANGE = (1, 10)


class AppSettings:
    """Typed access to the settings; every setter writes through, so a crash loses nothing."""

    def __init__(self, settings: QSettings | None = None) -> None:
        self._s = settings or QSettings(
            QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION
        )

    def _str(self, key: str, default: str = "") -> str:
        value = self._s.value(key, default)
        return value if isinstance(value, str) else default

    def _int(self, key: str, default: int = 0) -> int:
        try:
            return int(self._s.value(key, default))
        except (TypeError, ValueError):
            return default

    def _str_list(self, key: str) -> list[str]:
        """A stored list of non-empty strings, first occurrences only, in order."""
        value = self._s.value(key, [])
        if isinstance(value, str):  # QSettings returns a lone item as a plain string
            value = [value]
        if not isinstance(value, (list, tuple)):  # an empty list is stored as @Invalid() and reads back as None
            return []
        return list(dict.fromkeys(v for v in value if isinstance(v, str) and v))

    def _push_recent(self, key: str, item: str, recent: list[str]) -> None:
        self._s.setValue(key, ([item] + [f for f in recent if f != item])[:MAX_RECENT_MODELS])

    @property
    def model(self) -> str:
        """Catalogue name or saved-model folder; empty means the default model."""
        return self._str("model")

    @model.setter
    def model(self, value: str) -> None:
        self._s.setValue("model", value)

    @property
    def device(self) -> str:
        value = self._str("device", "auto")
        return value if value in ("auto", "cpu", "cuda", "mps") else "auto"

    @device.setter
    def device(self, value: str) -> None:
        self._s.setValue("device", value)

    @property
    def top_k(self) -> int:
        return min(max(self._int("top_k", 5), TOP_K_RANGE[0]), TOP_K_RANGE[1])

    @top_k.setter
    def top_k(self, value: int) -> None:
        self._s.setValue("top_k", int(value))

    @property
    def last_folder(self) -> str:
        return self._str("last_folder")

    @last_folder.setter
    def last_folder(self, value: str) -> None:
        self._s.setValue("last_folder", value)

    @property
    def capture_folder(self) -> str:
        """Dataset folder the camera saves captures into (``<folder>/<class>/``); the Finetune window offers it."""
        return self._str("camera/capture_folder")

    @capture_folder.setter
    def capture_folder(self, value: str) -> None:
        self._s.setValue("camera/capture_folder", value)

    # camera mode (issue 4): the camera picked, its resolution ("WxH"), mirror, smoothing, capture classes
    @property
    def camera_id(self) -> str:
        return self._str("camera/id")

    @camera_id.setter
    def camera_id(self, value: str) -> None:
        self._s.setValue("camera/id", value)

    @property
    def camera_resolution(self) -> str:
        return self._str("camera/resolution")

    @camera_resolution.setter
    def camera_resolution(self, value: str) -> None:
        self._s.setValue("camera/resolution", value)

    @property
    def camera_mirror(self) -> bool:
        return str(self._s.value("camera/mirror", "true")).lower() in ("true", "1")

    @camera_mirror.setter
    def camera_mirror(self, value: bool) -> None:
        self._s.setValue("camera/mirror", "true" if value else "false")

    @property
    def camera_smoothing(self) -> int:
        """Results averaged for the live bars (1 = none)."""
        return min(max(self._int("camera/smoothing", 3), 1), 30)

    @camera_smoothing.setter
    def camera_smoothing(self, value: int) -> None:
        self._s.setValue("camera/smoothing", int(value))

    @property
    def camera_classes(self) -> list[str]:
        """The capture class names, in the order the user added them."""
        return self._str_list("camera/classes")

    @camera_classes.setter
    def camera_classes(self, value: list[str]) -> None:
        self._s.setValue("camera/classes", list(value))

    # -- the Finetune window's form ("finetune/" group) --
    @property
    def finetune_data_folders(self) -> list[str]:
        """Dataset folders used lately in the Finetune window, newest first."""
        return self._str_list("finetune/data_folders")[:MAX_RECENT_MODELS]

    def add_finetune_data_folder(self, folder: str) -> None:
        self._push_recent("finetune/data_folders", folder, self.finetune_data_folders)

    @property
    def finetune_model(self) -> str:
        return self._str("finetune/model")

    @finetune_model.setter
    def finetune_model(self, value: str) -> None:
        self._s.setValue("finetune/model", value)

    @property
    def finetune_mode(self) -> str:
        value = self._str("finetune/mode", "quick")
        return value if value in ("quick", "deep") else "quick"

    @finetune_mode.setter
    def finetune_mode(self, value: str) -> None:
        self._s.setValue("finetune/mode", value)

    @property
    def finetune_epochs(self) -> int:
        """0: the mode's default."""
        return max(0, self._int("finetune/epochs"))

    @finetune_epochs.setter
    def finetune_epochs(self, value: int) -> None:
        self._s.setValue("finetune/epochs", int(value))

    @property
    def finetune_input_size(self) -> int:
        """0: the model's own input size."""
        return max(0, self._int("finetune/input_size"))

    @finetune_input_size.setter
    def finetune_input_size(self, value: int) -> None:
        self._s.setValue("finetune/input_size", int(value))

    @property
    def finetune_output_folder(self) -> str:
        return self._str("finetune/output_folder")

    @finetune_output_folder.setter
    def finetune_output_folder(self, value: str) -> None:
        self._s.setValue("finetune/output_folder", value)

    @property
    def recent_models(self) -> list[str]:
        """Saved-model folders used lately, newest first."""
        return self._str_list("recent_models")[:MAX_RECENT_MODELS]

    def add_recent_model(self, folder: str) -> None:
        self._push_recent("recent_models", folder, self.recent_models)

    def remove_recent_model(self, folder: str) -> None:
        self._s.setValue("recent_models", [f for f in self.recent_models if f != folder])

    @property
    def geometry(self) -> QByteArray | None:
        value = self._s.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self._s.setValue("window/geometry", value)

    @property
    def window_state(self) -> QByteArray | None:
        value = self._s.value("window/state")
        return value if isinstance(value, QByteArray) else None

    @window_state.setter
    def window_state(self, value: QByteArray) -> None:
        self._s.setValue("window/state", value)

    def sync(self) -> None:
        self._s.sync()
