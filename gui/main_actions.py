"""The main window's actions, menus and toolbar (File, Edit, View, Model with Device, Help)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QLabel, QStyle, QToolBar, QToolButton

from squeezelens.core.options import DEVICES

from .export_action import build_export_action
from .precision_menu import add_precision_menu

if TYPE_CHECKING:
    from .main_window import MainWindow

#: The Device menu's names for core's devices (one core adds without a name here shows as its value).
DEVICE_NAMES: dict[str, str] = {"auto": "Auto", "cpu": "CPU", "cuda": "CUDA GPU", "mps": "Apple GPU (MPS)"}


def build_actions(window: MainWindow) -> None:
    """Create the window's ``act_*`` actions, its menu bar, the Device group and the toolbar."""
    def action(text: str, slot: Any, shortcut: Any = None, tip: str = "") -> QAction:
        a = QAction(text, window)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setStatusTip(tip)
        a.triggered.connect(slot)
        return a

    S = QKeySequence.StandardKey
    window.act_open = action("&Open Images...", window.open_dialog, S.Open, "Open image files")
    window.act_open_folder = action("Open &Folder...", window.open_folder_dialog, "Ctrl+Shift+O",
                                  "Classify every image in a folder")
    window.act_open_model = action("Open &Model Folder...", window.open_model_dialog, None,
                                 "Load a saved (finetuned) model")
    window.act_paste = action("&Paste", window.paste, S.Paste, "Classify the image or file path on the clipboard")
    window.act_quit = action("&Quit", window.close, S.Quit)
    window.act_quit.setMenuRole(QAction.MenuRole.QuitRole)
    window.act_fullscreen = action("&Full Screen", window.toggle_fullscreen, S.FullScreen)
    window.act_fullscreen.setCheckable(True)
    window.act_camera = action("&Camera", window.set_camera_mode, "Ctrl+K", "Classify live video from a camera")
    window.act_camera.setCheckable(True)
    window.act_model = action("Choose &Model", window._open_picker, "Ctrl+M")
    window.act_finetune = action("&Finetune...", window.open_finetune, "Ctrl+T",
                               "Teach a model your own classes from a folder of images")
    window.act_review = action("&Review Labels...", window.open_review, "Ctrl+Shift+R",
                               "Find training images whose folder label looks wrong")
    window.act_shortcuts = action("&Keyboard Shortcuts", window.show_shortcuts, "F1", "Every keyboard shortcut")
    window.act_about = action("&About SqueezeLens", window.show_about)
    window.act_about.setMenuRole(QAction.MenuRole.AboutRole)

    file_menu = window.menuBar().addMenu("&File")
    for a in (window.act_open, window.act_open_folder, window.act_open_model):
        file_menu.addAction(a)
    file_menu.addSeparator()
    file_menu.addAction(window.act_quit)
    window.menuBar().addMenu("&Edit").addAction(window.act_paste)
    view_menu = window.menuBar().addMenu("&View")
    view_menu.addAction(window.act_fullscreen)
    view_menu.addAction(window.act_camera)
    model_menu = window.menuBar().addMenu("&Model")
    model_menu.addAction(window.act_model)
    model_menu.addAction(window.act_open_model)
    model_menu.addAction(window.act_finetune)
    model_menu.addAction(window.act_review)
    window.act_export = build_export_action(window, model_menu)  # issue 17: export_action.py
    device_menu = model_menu.addMenu("&Device")
    device_menu.setToolTipsVisible(True)  # an unavailable device says why (ModelControls.set_device_availability)
    window.device_menu = device_menu
    window.device_group = QActionGroup(window)
    for value in DEVICES:
        a = QAction(DEVICE_NAMES.get(value, value), window, checkable=True)
        a.setData(value)
        a.setChecked(value == window.settings.device)
        a.triggered.connect(lambda _checked=False, v=value: window.choose_device(v))
        window.device_group.addAction(a)
        device_menu.addAction(a)
    window.precision_group = add_precision_menu(window, model_menu)
    help_menu = window.menuBar().addMenu("&Help")
    help_menu.addAction(window.act_shortcuts)
    help_menu.addAction(window.act_about)

    tools = QToolBar("Main")
    tools.setObjectName("mainToolbar")
    tools.setMovable(False)
    tools.addAction(window.act_open)
    tools.addAction(window.act_open_folder)
    tools.addAction(window.act_paste)
    tools.addAction(window.act_camera)
    tools.addSeparator()
    tools.addWidget(QLabel(" Model "))
    tools.addWidget(window.picker)
    tools.addWidget(QLabel("  "))
    tools.addWidget(window.top_k)
    tools.addSeparator()
    tools.addAction(window.act_finetune)
    # icons from the style (they follow the platform and the palette) and text beside them
    SP = QStyle.StandardPixmap
    for a, icon in ((window.act_open, SP.SP_DialogOpenButton), (window.act_open_folder, SP.SP_DirOpenIcon),
                    (window.act_paste, SP.SP_FileDialogContentsView), (window.act_camera, SP.SP_MediaPlay),
                    (window.act_finetune, SP.SP_FileDialogDetailedView)):
        a.setIcon(window.style().standardIcon(icon))
    tools.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    window.addToolBar(tools)


def finish_toolbar(window: MainWindow) -> None:
    """Once every action is on the toolbar (the "Why?" toggle comes later): each button gets an icon
    (a style's standard one where it has none) and a place in the Tab order (tool buttons take no focus by default)."""
    tools = window.findChild(QToolBar, "mainToolbar")
    if tools is None:
        return
    for a in tools.actions():
        button = tools.widgetForAction(a)
        if isinstance(button, QToolButton):
            if a.icon().isNull():
                a.setIcon(window.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxQuestion))
            button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
