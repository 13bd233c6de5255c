"""Grading a class: `grade`, `grade-all`, the worker, the host's reference run, grades.csv, the demo."""
