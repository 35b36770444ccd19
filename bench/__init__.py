"""Benchmarks for labelqueue: label efficiency against random and peer libraries, and speed.

Run from the repository root: ``python bench/label_efficiency.py`` and ``python bench/speed.py``.
Bench-only dependencies are listed in ``bench/requirements.txt``; none of them is a runtime
dependency of the product.
"""
