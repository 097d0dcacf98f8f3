"""Model > Export as ONNX...: the loaded model (stock or finetuned) as one self-contained ONNX file.

The export (:func:`squeezelens.core.model_export.export_model`: the verified graph, its metadata)
runs as a :func:`.tasks.start_task` job, off the GUI thread; the window hears back through a notice.
The file format, its metadata and the parity check are described in docs/EXPORT.md.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMenu

from .tasks import TaskContext, start_task

if TYPE_CHECKING:
    from .main_window import MainWindow


def _export(model: str, path: str, context: TaskContext) -> Any:
    from squeezelens.core.model_export import export_model

    return export_model(model, path, allow_download=False, cancel=context.cancel)


def build_export_action(window: MainWindow, menu: QMenu) -> QAction:
    """Add "Export as ONNX..." to ``menu``; returns the action (enabled whenever a model is loaded)."""
    action = QAction("&Export as ONNX...", window)
    action.setStatusTip("Save the loaded model as one ONNX file with its class names and preprocessing")
    running: list[Any] = []

    def done(result: Any) -> None:
        window.show_notice(f"Exported {result.model} to {result.path} ({result.size_bytes / 1e6:.1f} MB). "
                           "Check it with: squeezelens export FILE --check IMAGES")

    def failed(error: Exception) -> None:
        window.show_notice(f"Export failed: {error}", error=True)

    def trigger() -> None:
        state = window.client.model
        if state is None:
            window.show_notice("No model is loaded yet.")
            return
        if running:
            window.show_notice("An export is already running.")
            return
        stem = Path(state.name).name.replace(".", "_") or "model"
        folder = window.settings.last_folder or str(Path.home())
        path, _ = QFileDialog.getSaveFileName(window, "Export as ONNX", str(Path(folder) / f"{stem}.onnx"),
                                              "ONNX model (*.onnx)")
        if not path:
            return
        window.show_notice(f"Exporting {state.name} to {path}...")
        running.append(start_task(partial(_export, state.name, path), name="onnx-export", on_result=done,
                                  on_error=failed, on_finished=running.clear, owner=window))

    action.triggered.connect(trigger)
    menu.addAction(action)
    return action
