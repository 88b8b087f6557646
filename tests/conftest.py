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
