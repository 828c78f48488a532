"""`dgs-desktop-train`: the DGS-Net training loop (paper Sections 3-5), evaluation per subset,
and multi-GPU runs. GUI-free: imports `dgs_desktop.detector` and `dgs_desktop.scan`, never Qt.

`trainer.surgery.surgery_gradient(g_task, g_text, g_img, lam, mode)` is the gradient-surgery
contract; `trainer.cli.main` is the command-line entry point.
"""
