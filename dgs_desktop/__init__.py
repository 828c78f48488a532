"""DGS Desktop: tells whether images are AI-generated (DGS-Net detector)."""

__version__ = "0.1.0"
