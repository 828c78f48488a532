"""Provenance beside the score: metadata, generator fingerprints and C2PA Content Credentials.

GUI-free and model-free. The signals are shown side by side with the detector's probability
and never change it.
"""
