"""The DGS Desktop window. The only package that imports Qt (PySide6).

Heavy ML libraries are never imported at module level here: the window must appear before
torch/open_clip/peft finish loading (see `model_controller.MLStackLoader`).
"""
