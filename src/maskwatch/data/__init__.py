"""Datasets in, crops and splits out."""
