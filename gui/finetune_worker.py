"""The Finetune window's background work: the training run (a QThread) and the dataset preview scan.

Both hand plain data to the GUI thread through queued signals: core's frozen event dataclasses,
the :class:`~squeezelens.core.finetune.FinetuneResult`, a :class:`DatasetScan`, or a message.
torch is imported by ``core.finetune`` inside :meth:`FinetuneWorker.run`, never in the GUI thread.

The preview scan runs in a plain non-daemon Python thread with a cancel event and a size bound: a
newer scan or the app's exit cancels it within one file, and should one still hang (a dead network
mount), ``app.run`` sees a live Python thread at exit and ends the process rather than wait.
"""

from __future__ import annotations

import threading
import time
import traceback
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from squeezelens.core.dataset_scan import DatasetTooLarge, ScanCancelled, scan_dataset
from squeezelens.core.errors import SqueezeLensError
from squeezelens.core.finetune import BatchEvent, FinetuneConfig, FinetuneEvent

from .late_signals import emit_unless_deleted

#: At most this many batch events per second reach the GUI (quick mode's head trains thousands of
#: steps a second); the first and last batch of every epoch/stage always get through.
BATCH_EVENTS_PER_S = 20

# Workers still running after their window let go of them (a close mid-run): kept alive here until
# they finish, so a running QThread is never destroyed with its window.
_ORPHANS: set[FinetuneWorker] = set()


class FinetuneWorker(QThread):
    """Runs :func:`core.finetune.finetune` once with ``config``; :meth:`cancel` stops it at the next batch.

    Exactly one of ``succeeded``, ``cancelled`` or ``failed`` is emitted before ``finished``.
    """

    # every signal carries the run's id, so a window can tell its current run from one it let go of
    progressed = Signal(int, object)  # run id, a core.finetune event (frozen dataclass of plain data)
    succeeded = Signal(int, object)  # run id, FinetuneResult
    cancelled = Signal(int, str, int)  # run id, message, epochs done a deep-mode run can resume after (0: none)
    failed = Signal(int, str)  # run id, a message for the user (never a traceback)

    def __init__(self, config: FinetuneConfig, run_id: int = 0, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.config = config
        self.run_id = run_id
        self.cancel_event = threading.Event()
        self.done_event = threading.Event()  # set when run() returns (a plain-Python handle to wait on)
        self._last_batch_emit = 0.0
        self.finished.connect(self._forget)

    def start_run(self) -> None:
        """Start the thread, keeping this object alive until it finishes whatever its owner does."""
        _ORPHANS.add(self)
        self.start()

    def cancel(self) -> None:
        self.cancel_event.set()

    def run(self) -> None:
        from squeezelens.core.finetune import FinetuneCancelled, finetune

        try:
            result = finetune(self.config, self._forward, self.cancel_event)
        except FinetuneCancelled as e:
            self.cancelled.emit(self.run_id, str(e), e.epochs_done if e.checkpoint is not None else 0)
        except SqueezeLensError as e:
            self.failed.emit(self.run_id, str(e))
        except Exception as e:  # a bug: one line in the window, the traceback on stderr
            traceback.print_exc()
            self.failed.emit(self.run_id, f"{type(e).__name__}: {e}")
        else:
            self.succeeded.emit(self.run_id, result)
        finally:
            self.done_event.set()

    def _forward(self, event: FinetuneEvent) -> None:
        if isinstance(event, BatchEvent) and 1 < event.batch < event.batches:
            now = time.monotonic()
            if now - self._last_batch_emit < 1.0 / BATCH_EVENTS_PER_S:
                return
            self._last_batch_emit = now
        self.progressed.emit(self.run_id, event)

    def _forget(self) -> None:
        _ORPHANS.discard(self)  # the C++ thread object goes when its last owner lets go (never while running)


def wait_in_background(worker: FinetuneWorker) -> None:
    """A non-daemon Python thread that waits for ``worker``: at app exit it tells ``app.run`` that work
    is still running (so the process ends with ``os._exit`` instead of destroying a running QThread)."""
    threading.Thread(target=worker.done_event.wait, name="finetune-wait", daemon=False).start()


class DatasetScanner(QObject):
    """Scans a folder for the dataset preview in a Python thread; answers by token.

    Each scan has its own cancel event; a new scan cancels the one before. At most ``max_entries``
    files and folders are visited (``DatasetTooLarge`` beyond: reported through ``failed``).
    """

    scanned = Signal(int, object)  # token, DatasetScan
    failed = Signal(int, str)  # token, message

    def __init__(self, max_entries: int | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.max_entries = max_entries
        self._scans: list[tuple[threading.Thread, threading.Event]] = []

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t, _ in self._scans)

    def scan(self, token: int, folder: str) -> None:
        """Scan ``folder`` in a new thread, cancelling any earlier scan."""
        self.cancel()
        cancel = threading.Event()
        thread = threading.Thread(target=self._task, args=(token, folder, self.max_entries, cancel),
                                  name="finetune-preview-scan", daemon=False)
        self._scans.append((thread, cancel))
        thread.start()

    def cancel(self) -> None:
        """Stop every scan still running (each stops at its next file, without answering)."""
        for _, event in self._scans:
            event.set()
        self._scans = [(t, e) for t, e in self._scans if t.is_alive()]

    def wait(self, msecs: int = 2000) -> bool:
        """Cancel the scans and wait for their threads (bounded); True when none is left running."""
        self.cancel()
        deadline = time.monotonic() + msecs / 1000
        for thread, _ in self._scans:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._scans = [(t, e) for t, e in self._scans if t.is_alive()]
        return not self._scans

    def _task(self, token: int, folder: str, max_entries: int | None, cancel: threading.Event) -> None:
        try:
            result = scan_dataset(folder, cancel=cancel, max_entries=max_entries)
        except ScanCancelled:
            return
        except DatasetTooLarge as e:
            self._answer(cancel, "failed", token, f"{e} The preview stops there; Start scans the whole folder.")
        except SqueezeLensError as e:
            self._answer(cancel, "failed", token, str(e))
        except OSError as e:  # e.g. permission denied on a subfolder
            self._answer(cancel, "failed", token, f"{folder}: cannot read the folder ({e.strerror or e})")
        except Exception as e:
            traceback.print_exc()
            self._answer(cancel, "failed", token, f"{type(e).__name__}: {e}")
        else:
            self._answer(cancel, "scanned", token, result)

    def _answer(self, cancel: threading.Event, signal: str, *args: Any) -> None:
        if cancel.is_set():
            return  # superseded or shutting down: nobody waits for this answer
        emit_unless_deleted(self, signal, *args)
