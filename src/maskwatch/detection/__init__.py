"""Finding faces in whole frames, then classifying each one."""
