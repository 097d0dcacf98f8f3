"""The app's persistent settings (QSettings, INI format in the user's config folder).

Each setting is one line in :class:`AppSettings`: a descriptor with its QSettings key, its default,
and how a stored value is checked. A value that is missing, hand-edited into something else, or out
of range reads back as the default (or clamped), so a bad settings file never stops the app. Every
write goes straight to QSettings, so a crash loses nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Generic, TypeVar, overload

from PySide6.QtCore import QByteArray, QSettings

from squeezelens.core.options import DEVICES, FINETUNE_MODES, PRECISIONS, Device

ORGANIZATION = "SqueezeLens"
APPLICATION = "SqueezeLens"
MAX_RECENT_MODELS = 8
TOP_K_RANGE = (1, 10)
#: Results averaged for the live bars (1 = none).
SMOOTHING_RANGE = (1, 30)
#: The device when none is chosen (and the fallback when the chosen one fails at start-up).
DEFAULT_DEVICE: Device = "auto"

T = TypeVar("T")


class _Setting(Generic[T]):
    """One QSettings key, read as a ``T`` (anything unreadable gives ``default``) and written through."""

    def __init__(self, key: str, default: T) -> None:
        self.key = key
        self.default = default

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _Setting[T]: ...

    @overload
    def __get__(self, obj: AppSettings, owner: type | None = None) -> T: ...

    def __get__(self, obj: AppSettings | None, owner: type | None = None) -> _Setting[T] | T:
        if obj is None:
            return self
        return self.decode(obj._s.value(self.key, self.encode(self.fallback())))

    def __set__(self, obj: AppSettings, value: T) -> None:
        obj._s.setValue(self.key, self.encode(value))

    def fallback(self) -> T:
        """What a missing or unreadable value reads as."""
        return self.default

    def decode(self, raw: object) -> T:
        raise NotImplementedError

    def encode(self, value: T) -> object:
        return value


class _Text(_Setting[str]):
    """A string; anything else (a list, ``@Invalid()``) reads as ``default``."""

    def __init__(self, key: str, default: str = "") -> None:
        super().__init__(key, default)

    def decode(self, raw: object) -> str:
        return raw if isinstance(raw, str) else self.default


class _Choice(_Setting[str]):
    """One of ``choices``; ``default`` None: the first."""

    def __init__(self, key: str, choices: Sequence[str], default: str | None = None) -> None:
        super().__init__(key, default or "")
        self._choices = choices

    def choices(self) -> Sequence[str]:
        return self._choices

    def fallback(self) -> str:
        return self.default or self.choices()[0]

    def decode(self, raw: object) -> str:
        return raw if isinstance(raw, str) and raw in self.choices() else self.fallback()


class _Int(_Setting[int]):
    """An integer clamped to ``[lo, hi]`` (either may be None: unbounded); a non-integer reads as ``default``."""

    def __init__(self, key: str, default: int, lo: int | None = None, hi: int | None = None) -> None:
        super().__init__(key, default)
        self.lo, self.hi = lo, hi

    def decode(self, raw: object) -> int:
        try:
            value = int(raw)  # type: ignore[call-overload]  # any object: what int() refuses is caught
        except (TypeError, ValueError):
            value = self.default
        if self.lo is not None:
            value = max(value, self.lo)
        if self.hi is not None:
            value = min(value, self.hi)
        return value

    def encode(self, value: int) -> object:
        return int(value)


class _Flag(_Setting[bool]):
    """A boolean, stored as ``"true"`` / ``"false"``."""

    def decode(self, raw: object) -> bool:
        return str(raw).lower() in ("true", "1")

    def encode(self, value: bool) -> object:
        return "true" if value else "false"


class _TextList(_Setting[list[str]]):
    """A list of non-empty strings, first occurrences only, in order, at most ``limit`` of them."""

    def __init__(self, key: str, limit: int | None = None) -> None:
        super().__init__(key, [])
        self.limit = limit

    def decode(self, raw: object) -> list[str]:
        if isinstance(raw, str):  # QSettings returns a lone item as a plain string
            raw = [raw]
        if not isinstance(raw, (list, tuple)):  # an empty list is stored as @Invalid() and reads back as None
            return []
        return list(dict.fromkeys(v for v in raw if isinstance(v, str) and v))[: self.limit]

    def encode(self, value: list[str]) -> object:
        return list(value)[: self.limit]


class _Bytes(_Setting[QByteArray | None]):
    """Opaque bytes from Qt (window geometry and state); None when absent or not bytes."""

    def __init__(self, key: str) -> None:
        super().__init__(key, None)

    def decode(self, raw: object) -> QByteArray | None:
        return raw if isinstance(raw, QByteArray) else None


class AppSettings:
    """Typed access to the settings; every setter writes through, so a crash loses nothing."""

    #: Catalogue name or saved-model folder; empty means the default model.
    model = _Text("model")
    device = _Choice("device", DEVICES, DEFAULT_DEVICE)
    #: CPU inference precision (Model > Precision); fp32 (exact) until the user picks auto/int8/bf16:
    #: a first int8 preparation (quantization + a 104-photo check) keeps both cores of a small
    #: machine busy for a while, which made the window stutter in the responsiveness tests
    precision = _Choice("precision", PRECISIONS, "fp32")
    top_k = _Int("top_k", 5, *TOP_K_RANGE)
    last_folder = _Text("last_folder")
    #: Saved-model folders used lately, newest first (see :meth:`add_recent_model`).
    recent_models = _TextList("recent_models", MAX_RECENT_MODELS)
    geometry = _Bytes("window/geometry")
    window_state = _Bytes("window/state")

    # camera mode: the dataset captures go into (``<folder>/<class>/``, the Finetune window offers it),
    # the camera picked, its resolution ("WxH"), mirror, smoothing, and the capture classes in the
    # order the user added them
    capture_folder = _Text("camera/capture_folder")
    camera_id = _Text("camera/id")
    camera_resolution = _Text("camera/resolution")
    camera_mirror = _Flag("camera/mirror", True)
    camera_smoothing = _Int("camera/smoothing", 3, *SMOOTHING_RANGE)
    camera_classes = _TextList("camera/classes")
    # class folders removed from the capture panel's list (their files stay on disk)
    camera_removed_classes = _TextList("camera/removed_classes")

    # the Finetune window's form; 0 epochs: the mode's default; 0 input size: the model's own
    finetune_data_folders = _TextList("finetune/data_folders", MAX_RECENT_MODELS)  # newest first
    finetune_model = _Text("finetune/model")
    finetune_mode = _Choice("finetune/mode", FINETUNE_MODES)
    finetune_epochs = _Int("finetune/epochs", 0, lo=0)
    finetune_input_size = _Int("finetune/input_size", 0, lo=0)
    finetune_output_folder = _Text("finetune/output_folder")

    # the "Why?" heatmap overlay: on or off, and its opacity in percent
    explain_on = _Flag("explain/on", False)
    explain_opacity = _Int("explain/opacity", 60, 0, 100)

    def __init__(self, settings: QSettings | None = None) -> None:
        self._s = settings or QSettings(
            QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION
        )

    def add_recent_model(self, folder: str) -> None:
        """Put ``folder`` first in :attr:`recent_models` (moved there if it was listed already)."""
        self.recent_models = _push(folder, self.recent_models)

    def remove_recent_model(self, folder: str) -> None:
        self.recent_models = [f for f in self.recent_models if f != folder]

    def add_finetune_data_folder(self, folder: str) -> None:
        self.finetune_data_folders = _push(folder, self.finetune_data_folders)

    # the unknown-threshold slider (issue 16), kept PER MODEL (a threshold is calibrated for one model):
    # "off" or a value in 0..1 under a key derived from the model name/folder; absent = the model's own
    def unknown_threshold_for(self, model: str) -> float | str | None:
        """The slider setting saved for ``model`` (catalogue name or folder): ``"off"``, 0..1, or None."""
        raw = self._s.value(_unknown_key(model))
        if raw == "off":
            return "off"
        try:
            value = float(str(raw))
        except ValueError:
            return None
        return value if 0.0 <= value <= 1.0 else None

    def set_unknown_threshold_for(self, model: str, setting: float | str | None) -> None:
        """Save ``setting`` for ``model``; None (the Reset button) forgets it."""
        if setting is None:
            self._s.remove(_unknown_key(model))
        else:
            self._s.setValue(_unknown_key(model), setting if setting == "off" else str(float(setting)))

    def sync(self) -> None:
        self._s.sync()


def _unknown_key(model: str) -> str:
    # a folder path has slashes (QSettings groups): key on a hash of it instead
    return "unknown_threshold/" + hashlib.sha1(model.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _push(item: str, recent: list[str]) -> list[str]:
    return [item, *(f for f in recent if f != item)]

