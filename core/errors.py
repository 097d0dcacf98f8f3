"""Every error SqueezeLens raises on purpose: one base class, one class per kind.

Each message is written for a person and is shown as it is (the CLI prints it after
``squeezelens: error:``, the GUI in a notice). An error about one file keeps the file apart from
the reason: ``reason`` says what is wrong, ``path`` names the file, and ``str(error)`` joins them
as ``"PATH: REASON"``. Code that shows the path elsewhere (a table row, a tooltip) uses
``reason`` alone, so nobody cuts the path back out of a message.

The kinds, and what the CLI does with each:

==========================  ========================================================  ======
kind                        raised when                                               exit
==========================  ========================================================  ======
:class:`UsageError`         an option or argument cannot be used                      2
:class:`ModelNotFoundError` the model is neither a catalogue variant nor a folder     2
:class:`WeightsError`       a weights file or model folder cannot be used             2
:class:`ImageLoadError`     one input cannot be read as an image                      1 [#]_
:class:`DatasetError`       a finetune dataset folder cannot be used                  2
:class:`ExportError`        the ONNX export failed or disagrees with torch            2 [#]_
:class:`GpuOutOfMemory`     even one input does not fit in the GPU's memory           2 [#]_
:class:`OutputError`        a result, report or model cannot be written               2
:class:`Cancelled`          the user cancelled a download, scan or finetune           130
==========================  ========================================================  ======

.. [#] that input's error line; the others are still classified.
.. [#] the engine falls back to torch and logs the reason; only ``--backend onnxruntime`` fails.
.. [#] the engine moves to the CPU instead; it is raised only to that fallback.
"""

from __future__ import annotations

from pathlib import Path


class SqueezeLensError(Exception):
    """Base class: the message is written for a person, not a developer.

    Attributes:
        reason: what is wrong, without the path.
        path: the file or folder the error is about, or None.
    """

    def __init__(self, reason: str, path: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class UsageError(SqueezeLensError, ValueError):
    """An option, argument or setting that cannot be used (a bad ``--top-k``, an unknown device...).

    Also a ``ValueError``, so code that passed a bad argument to the API and catches that still does.
    """


class ModelNotFoundError(UsageError):
    """The model name is not a known SE-ResNeXt variant nor a model directory."""


class WeightsError(SqueezeLensError):
    """A weights file or model directory could not be used."""


class ImageLoadError(SqueezeLensError):
    """One input could not be read as an image; ``path`` names it when it was a file or folder."""


class DatasetError(SqueezeLensError):
    """The finetune folder cannot be used (missing, fewer than two classes, ...)."""


class DatasetTooLarge(DatasetError):
    """The folder holds more entries than the scan was allowed to look at."""


class ExportError(SqueezeLensError):
    """The model could not be exported to ONNX, or the export disagrees with torch."""


class GpuOutOfMemory(SqueezeLensError, RuntimeError):
    """Even one input at a time does not fit in the GPU's free memory.

    Also a ``RuntimeError``, as it was before the errors moved here.
    """


class OutputError(SqueezeLensError):
    """A results file, report or model folder could not be written."""


class Cancelled(SqueezeLensError):
    """The user cancelled long work; nothing it would have written was changed."""


class DownloadCancelled(Cancelled):
    """The user cancelled a weights download."""


class ScanCancelled(Cancelled):
    """A dataset scan was cancelled."""


class FinetuneCancelled(Cancelled):
    """The run was cancelled; the output folder is as it was.

    Attributes:
        checkpoint: set when deep mode can resume from a finished epoch.
        epochs_done: how many epochs that checkpoint holds.
    """

    def __init__(self, reason: str, checkpoint: Path | None = None, epochs_done: int = 0) -> None:
        super().__init__(reason)
        self.checkpoint = checkpoint
        self.epochs_done = epochs_done


__all__ = [
    "Cancelled", "DatasetError", "DatasetTooLarge", "DownloadCancelled", "ExportError", "FinetuneCancelled",
    "GpuOutOfMemory", "ImageLoadError", "ModelNotFoundError", "OutputError", "ScanCancelled",
    "SqueezeLensError", "UsageError", "WeightsError",
]
