"""Shared fixtures. Tests run on one CPU thread: the suite must stay light
beside other jobs on small machines."""
import pytest
import torch

from tiny_encoder import build_tiny_encoder

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_encoder_path(tmp_path_factory):
    """Folder of a tiny random BERT (hidden size 32) with the MiniLM tokenizer."""
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny_encoder"))


@pytest.fixture(scope="session")
def saved_tiny_pipeline(tiny_encoder_path, tmp_path_factory):
    """The tiny pipeline (`tiny_pipeline.py`) with a sentencizer first, and the folder it was saved to."""
    from tiny_pipeline import build_tiny_pipeline

    nlp = build_tiny_pipeline(tiny_encoder_path)
    nlp.add_pipe("sentencizer", first=True)
    path = tmp_path_factory.mktemp("pipeline") / "model"
    nlp.to_disk(path)
    return nlp, path
