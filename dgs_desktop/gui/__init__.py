"""The DGS Desktop window. The only package that imports Qt (PySide6).

Heavy ML libraries are never imported at module level here: the window must appear before
torch finishes loading (see `model_controller.load_ml_stack`; scoring needs neither open_clip
nor peft, `detector.scorer`).

- `app`: start-up, error dialogs, screenshot mode; `main_window`: wires the parts together;
  `window_actions`: every command, its shortcut and its menu, in one table.
- Controllers (QObjects, no widgets): `model_controller` (libraries, the active model),
  `scan_controller` (the scan state machine on its own thread pool), `case_controller`
  (autosave into the case file, unsaved results).
- Views: `results_model` (rows, the table's model), `detail_pane` + `evidence_view` (the image,
  its patches, the mosaic), `histogram`, `model_banner`, `model_manager`, `help_dialogs`.
- `workers` (QRunnables: tasks, the scan worker, scoring each content once), `thumbnails`.
"""
