"""Data and I/O: corpus conversion, assets, prediction files, statistics, displaCy
views, packaging, and atomic outputs."""
