"""The window's actions and menus: one QAction per command, shared by the menu bar, the toolbar
and the keyboard shortcut list (Help), so a command and its shortcut are written down once."""

from __future__ import annotations

from operator import attrgetter

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QStyle

SK = QKeySequence.StandardKey

# attribute, text, window method (dotted path, looked up when triggered), shortcut, tip, icon
ACTIONS = (
    ("add_files_action", "Add files…", "choose_files", SK.Open, "Add image files to scan", "SP_FileIcon"),
    ("add_folder_action", "Add folder…", "choose_folder", "Ctrl+Shift+O",
     "Add every file in a folder and its subfolders", "SP_DirIcon"),
    ("cancel_action", "Cancel scan", "cancel_scan", "Esc", "Stop the scan; results so far are kept", "SP_BrowserStop"),
    ("resume_action", "Scan remaining", "scan_remaining", "Ctrl+R", "Scan the files a cancelled scan did not reach",
     "SP_MediaPlay"),
    ("save_case_action", "Save as case…", "choose_case_save", "Ctrl+S",
     "Keep this list and its results in a case file, saved automatically from then on", "SP_DialogSaveButton"),
    ("open_case_action", "Open case…", "choose_case_open", "Ctrl+K", "Reopen a case file", "SP_DialogOpenButton"),
    ("export_action", "Export CSV…", "choose_export", "Ctrl+E",
     "Save the results as CSV, the same columns as `dgs-desktop scan`", "SP_FileDialogDetailedView"),
    ("export_report_action", "Export report…", "report_and_provenance.choose_export", "Ctrl+Shift+E",
     "Save an HTML or PDF report of the scanned images: model, counts, and per image the evidence and provenance",
     "SP_FileDialogContentsView"),
    ("copy_action", "Copy rows", "copy_selected_rows", SK.Copy, "Copy the selected rows as tab-separated text", None),
    ("clear_action", "Clear", "request_clear", None,
     "Remove all files from the list (asks first when results are not saved)", "SP_DialogResetButton"),
    ("quit_action", "Quit", "close", "Ctrl+Q", "Quit DGS Desktop (asks first when results are unsaved)", None),
    ("model_action", "Model manager…", "open_model_manager", "Ctrl+M",
     "Load, import or download a model; choose the device", "SP_ComputerIcon"),
    ("load_folder_action", "Load checkpoint folder…", "choose_checkpoint_folder", None,
     "Load a folder with dgs_checkpoint.json", None),
    ("calibration_action", "Calibration…", "open_calibration", None,
     "Calibrate the threshold on your own real photos, or load a calibration file", None),
    ("stability_action", "Check stability", "check_stability", "Ctrl+T",
     "Score the selected image's patches in 8 other mosaic orders and show the spread of P(fake)", None),
    ("zoom_in_action", "Zoom in", "detail.image_view.zoom_in", SK.ZoomIn, "Zoom into the image", None),
    ("zoom_out_action", "Zoom out", "detail.image_view.zoom_out", SK.ZoomOut, "Zoom out of the image", None),
    ("fit_action", "Fit image", "detail.image_view.fit", "Ctrl+0", "Show the whole image", None),
    ("actual_size_action", "Actual pixels (1:1)", "detail.image_view.actual_size", "Ctrl+1",
     "One image pixel per screen pixel", None),
    ("focus_table_action", "Go to results table", "table.setFocus", "Ctrl+L", "Move the keyboard focus to the table",
     None),
    ("focus_filter_action", "Filter by name…", "text_filter.setFocus", SK.Find, "Type to filter rows by path", None),
    ("focus_threshold_action", "Set threshold", "threshold_spin.setFocus", "Ctrl+H",
     "Move the keyboard focus to the threshold", None),
    ("shortcuts_action", "Keyboard shortcuts", "show_shortcuts", SK.HelpContents, "List every shortcut", None),
    ("about_action", "About DGS Desktop", "show_about", None, "Version, model and device", None),
)

MENUS = (
    ("&File", ("add_files_action", "add_folder_action", None, "cancel_action", "resume_action", None,
               "open_case_action", "save_case_action", None, "export_action", "export_report_action", "copy_action", "clear_action", None,
               "quit_action")),
    ("&View", ("zoom_in_action", "zoom_out_action", "fit_action", "actual_size_action", None, "focus_table_action",
               "focus_filter_action", "focus_threshold_action")),
    ("&Model", ("model_action", "load_folder_action", "recent", None, "calibration_action", "stability_action")),
    ("&Help", ("shortcuts_action", "about_action")),
)

TOOLBAR = ("add_files_action", "add_folder_action", None, "cancel_action", "resume_action", None, "export_action",
           "export_report_action", "clear_action", None, "model_action")


def build_actions(window) -> None:
    """Sets one QAction attribute on `window` per entry of ACTIONS."""
    for name, text, method, shortcut, tip, icon in ACTIONS:
        action = QAction(text, window)
        if icon is not None:
            action.setIcon(window.style().standardIcon(getattr(QStyle.StandardPixmap, icon)))
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            tip = f"{tip} ({QKeySequence(shortcut).toString(QKeySequence.SequenceFormat.NativeText)})"
        action.setToolTip(tip)
        action.setStatusTip(tip)
        # Looked up when triggered: some targets (the viewer, the table) are built after the actions.
        action.triggered.connect(lambda checked=False, get=attrgetter(method): get(window)())
        window.addAction(action)
        setattr(window, name, action)


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
                window.recent_menu.aboutToShow.connect(window._fill_recent_menu)
                window._fill_recent_menu()
            else:
                menu.addAction(getattr(window, entry))
        menus.append(menu)
    window.menus = tuple(menus)


def toolbar_actions(window) -> list:
    return [None if name is None else getattr(window, name) for name in TOOLBAR]
