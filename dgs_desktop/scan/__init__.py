"""GUI-free scan engine: file discovery, decoding, patch selection, batching, CSV."""
