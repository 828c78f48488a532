"""The window's actions and menus: one QAction per command, shared by the menu bar, the toolbar
and the keyboard shortcut list (Help), so a command and its shortcut are written down once."""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QStyle

SK = QKeySequence.StandardKey

# attribute, text, shortcut, tip, icon; what each does is the window's `_action_triggers()`
ACTIONS = (
    ("add_files_action", "Add files…", SK.Open, "Add image files to scan", "SP_FileIcon"),
    ("add_folder_action", "Add folder…", "Ctrl+Shift+O",
     "Add every file in a folder and its subfolders", "SP_DirIcon"),
    ("cancel_action", "Cancel scan", "Esc", "Stop the scan; results so far are kept", "SP_BrowserStop"),
    ("resume_action", "Scan remaining", "Ctrl+R", "Scan the files a cancelled scan did not reach",
     "SP_MediaPlay"),
    ("save_case_action", "Save as case…", "Ctrl+S",
     "Keep this list and its results in a case file, saved automatically from then on", "SP_DialogSaveButton"),
    ("open_case_action", "Open case…", "Ctrl+K", "Reopen a case file", "SP_DialogOpenButton"),
    ("case_details_action", "Case details…", None,
     "The examiner and the case number, printed at the top of the case's reports", None),
    ("export_action", "Export CSV…", "Ctrl+E",
     "Save the results as CSV, the same columns as `dgs-desktop scan`", "SP_FileDialogDetailedView"),
    ("export_report_action", "Export report…", "Ctrl+Shift+E",
     "Save an HTML or PDF report of the scanned images: model, counts, and per image the evidence and provenance",
     "SP_FileDialogContentsView"),
    ("copy_action", "Copy rows", SK.Copy, "Copy the selected rows as tab-separated text", None),
    ("clear_action", "Clear", None,
     "Remove all files from the list (asks first when results are not saved)", "SP_DialogResetButton"),
    ("quit_action", "Quit", "Ctrl+Q", "Quit DGS Desktop (asks first when results are unsaved)", None),
    ("model_action", "Model manager…", "Ctrl+M",
     "Load, import or download a model; choose the device", "SP_ComputerIcon"),
    ("load_folder_action", "Load checkpoint folder…", None,
     "Load a folder with dgs_checkpoint.json", None),
    ("calibration_action", "Calibration…", None,
     "Calibrate the threshold on your own real photos, or load a calibration file", None),
    ("stability_action", "Check stability", "Ctrl+T",
     "Score the selected image's patches in 8 other mosaic orders and show the spread of P(fake)", None),
    ("zoom_in_action", "Zoom in", SK.ZoomIn, "Zoom into the image", None),
    ("zoom_out_action", "Zoom out", SK.ZoomOut, "Zoom out of the image", None),
    ("fit_action", "Fit image", "Ctrl+0", "Show the whole image", None),
    ("actual_size_action", "Actual pixels (1:1)", "Ctrl+1",
     "One image pixel per screen pixel", None),
    ("focus_table_action", "Go to results table", "Ctrl+L", "Move the keyboard focus to the table",
     None),
    ("focus_filter_action", "Filter by name…", SK.Find, "Type to filter rows by path", None),
    ("focus_threshold_action", "Set threshold", "Ctrl+H",
     "Move the keyboard focus to the threshold", None),
    ("shortcuts_action", "Keyboard shortcuts", SK.HelpContents, "List every shortcut", None),
    ("about_action", "About DGS Desktop", None, "Version, model and device", None),
)

MENUS = (
    ("&File", ("add_files_action", "add_folder_action", None, "cancel_action", "resume_action", None,
               "open_case_action", "save_case_action", "case_details_action", None, "export_action",
               "export_report_action", "copy_action", "clear_action", None, "quit_action")),
    ("&View", ("zoom_in_action", "zoom_out_action", "fit_action", "actual_size_action", None, "focus_table_action",
               "focus_filter_action", "focus_threshold_action")),
    ("&Model", ("model_action", "load_folder_action", "recent", None, "calibration_action", "stability_action")),
    ("&Help", ("shortcuts_action", "about_action")),
)

TOOLBAR = ("add_files_action", "add_folder_action", None, "cancel_action", "resume_action", None, "export_action",
           "export_report_action", "clear_action", None, "model_action")


def build_actions(window) -> None:
    """Sets one QAction attribute on `window` per entry of ACTIONS."""
    for name, text, shortcut, tip, icon in ACTIONS:
        action = QAction(text, window)
        if icon is not None:
            action.setIcon(window.style().standardIcon(getattr(QStyle.StandardPixmap, icon)))
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            tip = f"{tip} ({QKeySequence(shortcut).toString(QKeySequence.SequenceFormat.NativeText)})"
        action.setToolTip(tip)
        action.setStatusTip(tip)
        window.addAction(action)
        setattr(window, name, action)


def connect_actions(window, triggers: dict) -> None:
    """Connects each action to its callable (built after the widgets they act on); an action
    without one, or a callable for no action, is an error at start-up, not at the first click."""
    names = {entry[0] for entry in ACTIONS}
    if set(triggers) != names:
        raise KeyError(f"actions without a trigger: {sorted(names - set(triggers))}; "
                       f"triggers without an action: {sorted(set(triggers) - names)}")
    for name, trigger in triggers.items():
        getattr(window, name).triggered.connect(lambda checked=False, run=trigger: run())


def build_menus(window) -> None:
    """File, View, Model (with Recent models), Help: every action is in a menu."""
    menus = []
    for title, entries in MENUS:
        menu = window.menuBar().addMenu(title)
        for entry in entries:
            if entry is None:
                menu.addSeparator()
            elif entry == "recent":
                window.recent_menu = menu.addMenu("Recent models")
                window.recent_menu.aboutToShow.connect(window.models.fill_recent_menu)
                window.models.fill_recent_menu()
            else:
                menu.addAction(getattr(window, entry))
        menus.append(menu)
    window.menus = tuple(menus)


def toolbar_actions(window) -> list:
    return [None if name is None else getattr(window, name) for name in TOOLBAR]
