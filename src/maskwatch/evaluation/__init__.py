"""Checks of the shipped pipeline on a user's own photos, above the layers it runs."""
