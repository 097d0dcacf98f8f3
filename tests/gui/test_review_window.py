"""The review queue: ranking in a background task, keep / move / remove / undo on disk, retrain."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from PySide6.QtCore import Qt

from squeezelens.core.review import TRASH_DIR, ReviewResult, Suspect

ARCH = "seresnext26d_32x4d"


def _dataset(root: Path) -> Path:
    from PIL import Image

    for cls, colour in (("cat", (200, 0, 0)), ("dog", (0, 200, 0))):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (16, 16), colour).save(root / cls / f"{cls}{i}.png")
    return root


def _result(root: Path) -> ReviewResult:
    s = [Suspect(root / "cat" / "cat0.png", 0, "cat", 1, "dog", 0.1, 0.9, 0.9, True),
         Suspect(root / "dog" / "dog1.png", 1, "dog", 0, "cat", 0.3, 0.7, 0.7, True),
         Suspect(root / "cat" / "cat1.png", 0, "cat", 1, "dog", 0.8, 0.2, 0.2, False)]
    return ReviewResult(root, ["cat", "dog"], s, 3, ARCH)


def _files(root: Path) -> set[str]:
    return {p.name for p in root.rglob("*.png")}


def test_queue_actions_move_files_and_undo(qtbot: Any, tmp_path: Path) -> None:
    from squeezelens.gui.review_window import ReviewWindow

    data = _dataset(tmp_path / "data")
    (data / "dog" / "cat0.png").write_bytes(b"a different file with the same name")
    before = _files(data)
    w = ReviewWindow(str(data))
    qtbot.addWidget(w)
    w.show()
    w.show_result(_result(data))
    assert w.table.rowCount() == 3  # at least 20 or all flagged: here all 3
    assert [w.table.item(r, 2).text() for r in range(3)] == ["cat", "dog", "cat"]
    assert w.table.item(0, 3).text() == "dog (90%)" and w.table.item(0, 4).text() == "0.90"
    qtbot.waitUntil(lambda: all(not w.table.item(r, 0).icon().isNull() for r in range(3)),
                    timeout=10_000)  # the thumbnails, decoded in a background task

    qtbot.keyClick(w.table, Qt.Key.Key_M)  # row 0 -> suggested class, never overwriting dog/cat0.png
    assert (data / "dog" / "cat0 (2).png").is_file() and not (data / "cat" / "cat0.png").exists()
    assert (data / "dog" / "cat0.png").read_bytes() == b"a different file with the same name"
    assert w.table.item(0, 5).text() == "moved to dog" and w.selected_row() == 1

    qtbot.keyClick(w.table, Qt.Key.Key_Delete)  # row 1 -> the dataset's trash
    assert (data / TRASH_DIR / "dog" / "dog1.png").is_file() and not (data / "dog" / "dog1.png").exists()
    qtbot.keyClick(w.table, Qt.Key.Key_K)  # row 2 kept: nothing moves
    assert w.table.item(2, 5).text() == "kept" and (data / "cat" / "cat1.png").is_file()

    w.undo()  # the removal
    assert (data / "dog" / "dog1.png").is_file()
    w.table.selectRow(2)
    w.class_box.setCurrentIndex(w.class_box.findText("dog"))
    w.move_selected("dog")
    assert (data / "dog" / "cat1.png").is_file()
    assert _files(data) | {"cat0 (2).png"} >= before  # nothing deleted, only moved
    assert len(list(data.rglob("*.png"))) == 7

    with qtbot.waitSignal(w.retrainRequested) as signal:
        w.retrain_button.click()
    assert signal.args == [str(data)]


def test_ranking_runs_in_the_background(qtbot: Any, tmp_path: Path, shapes_module: ModuleType,
                                        confident_weights: Path) -> None:
    from squeezelens.gui.review_window import ReviewWindow

    data = shapes_module.make_dataset(tmp_path / "data", per_class=6, size=32, seed=2,
                                      classes=("checkerboard", "red_circles"))
    w = ReviewWindow(str(data), model=ARCH, weights=str(confident_weights), input_size=32, device="cpu")
    qtbot.addWidget(w)
    w.show()
    assert w.start()
    assert not w.start()  # one at a time
    qtbot.waitUntil(lambda: w._task is None, timeout=120_000)
    assert w.result is not None and len(w.result.suspects) == 12, w.summary.text()
    assert w.table.rowCount() == 12 and "look mislabelled" in w.summary.text()
    assert w.wait(1000)
