"""Frames from files and streams, tracking people across them, and what is written out."""
