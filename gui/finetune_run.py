"""One finetuning run in the background: :func:`squeezelens.core.finetune.finetune` as a :mod:`.tasks` task.

The run hands plain data to the GUI thread: core's frozen event dataclasses, the
:class:`~squeezelens.core.finetune.FinetuneResult`, or a message. torch is imported by
``core.finetune`` inside the task, never in the GUI thread.
"""

from __future__ import annotations

import traceback

from PySide6.QtCore import QObject, Signal

from squeezelens.core import finetune as core_finetune
from squeezelens.core.errors import FinetuneCancelled, SqueezeLensError
from squeezelens.core.finetune import BatchEvent, FinetuneConfig, FinetuneEvent, FinetuneResult
from squeezelens.core.progress_text import Throttle

from .tasks import Task, TaskContext, start_task

#: At most this many batch events per second reach the GUI (quick mode's head trains thousands of
#: steps a second); the first and last batch of every epoch/stage always get through.
BATCH_EVENTS_PER_S = 20


def train(config: FinetuneConfig, context: TaskContext) -> FinetuneResult:
    """The task: run ``config``, sending core's events (batch events thinned) to the GUI thread.

    Raises:
        FinetuneCancelled: ``context.cancel`` was set before the model was saved.
        SqueezeLensError: the dataset, base model or output folder cannot be used.
    """
    throttle = Throttle(BATCH_EVENTS_PER_S)

    def forward(event: FinetuneEvent) -> None:
        if isinstance(event, BatchEvent) and 1 < event.batch < event.batches and not throttle.ready():
            return
        context.progress(event)

    # stage_only: a model already in the folder stays current until the user picks old or new (issue 16)
    # imports torch: in the task's thread
    return core_finetune.finetune(config, forward, context.cancel, stage_only=True)


class FinetuneRun(QObject):
    """Runs ``config`` once; :meth:`cancel` stops it at the next batch.

    Every signal arrives in the GUI thread and carries the run's id, so a window can tell its current run
    from one it let go of. Exactly one of ``succeeded``, ``cancelled`` or ``failed`` comes before ``finished``.
    """

    progressed = Signal(int, object)  # run id, a core.finetune event (frozen dataclass of plain data)
    succeeded = Signal(int, object)  # run id, FinetuneResult
    cancelled = Signal(int, str, int)  # run id, message, epochs done a deep-mode run can resume after (0: none)
    failed = Signal(int, str)  # run id, a message for the user (never a traceback)
    finished = Signal(int)  # run id

    def __init__(self, config: FinetuneConfig, run_id: int = 0, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.config = config
        self.run_id = run_id
        self.task: Task | None = None

    def start(self) -> None:
        config = self.config
        self.task = start_task(lambda context: train(config, context), name="finetune-run",
                               on_progress=self._on_progress, on_result=self._on_result,
                               on_error=self._on_error, on_finished=self._on_finished, owner=self)

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    @property
    def cancel_requested(self) -> bool:
        return self.task is not None and self.task.cancelled

    @property
    def done(self) -> bool:
        """The run's code has stopped (its last answers may still be on their way to the GUI thread)."""
        return self.task is None or self.task.done

    def wait(self, msecs: int) -> bool:
        """Block up to ``msecs`` ms for the run's code to stop; True when it has (or never started)."""
        return self.task is None or self.task.wait(msecs)

    def _on_progress(self, event: object) -> None:
        self.progressed.emit(self.run_id, event)

    def _on_result(self, result: FinetuneResult) -> None:
        self.succeeded.emit(self.run_id, result)

    def _on_error(self, error: Exception) -> None:
        if isinstance(error, FinetuneCancelled):
            self.cancelled.emit(self.run_id, str(error), error.epochs_done if error.checkpoint is not None else 0)
        elif isinstance(error, SqueezeLensError):
            self.failed.emit(self.run_id, str(error))
        else:  # a bug: one line in the window, the traceback on stderr
            traceback.print_exception(type(error), error, error.__traceback__)
            self.failed.emit(self.run_id, f"{type(error).__name__}: {error}")

    def _on_finished(self) -> None:
        self.finished.emit(self.run_id)
