"""Exceptions that carry a message fit to show a user as it is."""

from __future__ import annotations


class SqueezeLensError(Exception):
    """Base class: the message is written for a person, not a developer."""


class ImageLoadError(SqueezeLensError):
    """One input could not be read as an image; ``path`` names it when it was a file or folder."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class WeightsError(SqueezeLensError):
    """A weights file or model directory could not be used."""


class ModelNotFoundError(SqueezeLensError):
    """The model name is not a known SE-ResNeXt variant nor a model directory."""


class DownloadCancelled(SqueezeLensError):
    """The user cancelled a weights download."""
