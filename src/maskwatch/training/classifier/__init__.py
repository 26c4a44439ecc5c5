"""The mask classifier and its gate: training, CV, calibration, evaluation, export; mask renders; the study."""
