"""GUI-free detector core: backbone, LoRA, head, patch selection, checkpoints.

Submodules are imported lazily by callers so that `patches` (numpy + Pillow only for the
maths) does not pull in open_clip/peft/transformers.
"""
