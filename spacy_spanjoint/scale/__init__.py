"""Extraction at scale on Ray Data (the `ray` extra: `pip install "spacy-spanjoint[ray]"`).

`shards.py` plans, reads and writes the shards of a job; `ray_job.py` runs the
job on Ray Data. Ray is imported only when a job runs. See docs/scale.md.
"""
from .ray_job import Extractor, ray_session, run_job
from .shards import OUTPUT_FORMATS, PlanMismatch, plan_shards, read_output

__all__ = ["Extractor", "OUTPUT_FORMATS", "PlanMismatch", "plan_shards", "ray_session", "read_output", "run_job"]
