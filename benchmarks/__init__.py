"""Side-by-side benchmarks of fl-sandbox against memory bandwidth, Flower and published results.

One script per question (each runs alone, ``python -m benchmarks.<name> --help``), each writing
its own JSON under ``benchmarks/results/`` through one harness (``benchmarks/harness.py``:
machine, start, duration, command line, one schema); ``python -m benchmarks.results`` assembles
``benchmarks/RESULTS.md`` from whatever JSONs exist, and ``python -m benchmarks.run_quick``
(``make bench``) runs the quick set then regenerates it.

Kept import-light: the Flower-side workers import modules of this package from a separate
environment that has neither the product's dependencies nor its configuration.
"""
