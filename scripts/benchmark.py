"""Speed and scale of a trained pipeline, on one machine in one run.

Measures, and writes to a JSON report and a PNG plot:
- inference throughput (sentences/s, tokens/s) on the test sentences, with
  the transformer alone and with the full pipeline, at the same batch size,
  and the ratio full / transformer alone; beside them the full pipeline that
  builds every candidate span's representation
  (`SpanJointModel.building_span_representations`), and how many docs it
  predicts differently;
- peak resident memory of that process;
- on a CPU, the full pipeline with a float32 encoder, a bfloat16 one
  (`predict_precision`, `spacy_spanjoint.encoder.precision`) and an int8 one
  (`spacy_spanjoint.quantize_encoder`): throughput (timed alternately in one
  process) and test NER / strict RE F1 of each;
- the full pipeline's throughput at several `nlp.pipe` batch sizes (timed
  alternately in one process), at the precision the pipeline was saved with;
- training seconds per epoch for each training config, from real
  `nlp.update` steps (timed over `--train-steps` steps after warm-up and
  scaled to the steps of one epoch, or over a whole epoch with
  `--full-epoch`; dev evaluation not included);
- seconds per 1,000 tokens and peak memory on long documents built from the
  test sentences (sentence boundaries kept), each size in a fresh process.

    python scripts/benchmark.py training/conll04/model-best corpus/conll04_test.spacy \\
        corpus/conll04_train.spacy reports/benchmark.json [--quick]
"""
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import typer

from spacy_spanjoint.analysis.benchmarks import measure_training, peak_memory_gib
from spacy_spanjoint.analysis.runs import gold_words, machine, pyplot

DOC_SIZES = [1000, 2000, 4000, 8000, 16000, 32000]
QUICK_DOC_SIZES = [1000, 2000]
TRAIN_CONFIGS = ["configs/conll04.cfg", "configs/conll04_spert.cfg"]
PRECISIONS = ["float32", "bfloat16", "int8"]
BATCH_SIZES = [8, 32, 128, 512]
QUICK_BATCH_SIZES = [8, 32]


def load_pipeline(model_dir: Path, gpu_id: int):
    import spacy

    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    return spacy.load(model_dir)


def gold_test_docs(nlp, test_path: Path, limit: int):
    """The annotated test sentences (the first `limit`, or all when 0)."""
    from spacy.tokens import DocBin

    gold = list(DocBin().from_disk(test_path).get_docs(nlp.vocab))
    return gold[:limit] if limit > 0 else gold


def test_docs(nlp, test_path: Path, limit: int):
    """The test sentences as untagged Docs with the corpus tokens."""
    return gold_words(nlp, gold_test_docs(nlp, test_path, limit))


def transformer_of(nlp):
    """The name and the component of the pipeline's transformer."""
    return next((name, pipe) for name, pipe in nlp.pipeline if pipe.__class__.__name__ == "Transformer")


def timed_pipe(nlp, words, batch_size: int):
    """Seconds that `nlp.pipe` takes over fresh copies of `words`, and its Docs."""
    docs = [doc.copy() for doc in words]
    start = time.perf_counter()
    predicted = list(nlp.pipe(docs, batch_size=batch_size))
    return time.perf_counter() - start, predicted


def rate(n_sentences: int, runs: List[float]) -> dict:
    """Sentences/s of the median run, and every run's seconds."""
    return {
        "sentences_per_second": round(n_sentences / statistics.median(runs), 1),
        "seconds_all_runs": [round(x, 3) for x in runs],
    }


def throughput(model_dir: Path, test_path: Path, batch_size: int, repeats: int, limit: int, gpu_id: int) -> dict:
    """Sentences/s and tokens/s of the transformer alone and of the full pipeline.

    The two are timed alternately `repeats` times in one process, and the
    median run of each is reported, so a slow moment of the machine hits both.
    A third run of the full pipeline builds the representation of every
    candidate span instead of factoring the entity logits
    (`SpanJointModel.entity_logits`); its predictions are compared with the
    factored pipeline's.
    """
    from spacy_spanjoint.analysis.gate_profile import span_model

    nlp = load_pipeline(model_dir, gpu_id)
    words = test_docs(nlp, test_path, limit)
    n_tokens = sum(len(doc) for doc in words)
    model = span_model(nlp)
    spans_key = nlp.get_pipe("spanjoint").spans_key
    transformer_name, _ = transformer_of(nlp)
    modes = {
        "transformer_alone": lambda: nlp.select_pipes(enable=[transformer_name]),
        "full_pipeline": contextlib.nullcontext,
        "full_pipeline_built_span_representations": model.building_span_representations,
    }
    predictions = {}

    def run(key: str) -> float:
        with modes[key]():
            seconds, docs = timed_pipe(nlp, words, batch_size)
        if key != "transformer_alone":
            predictions[key] = [predicted_outputs(doc, spans_key) for doc in docs]
        return seconds

    timed_pipe(nlp, words[:batch_size], batch_size)  # warm-up
    seconds = {key: [] for key in modes}
    for _ in range(repeats):
        for key, runs in seconds.items():
            runs.append(run(key))
    result = {"sentences": len(words), "tokens": n_tokens, "batch_size": batch_size, "repeats": repeats,
              "encoder_precision": encoder_precision_of(nlp)}
    for key, runs in seconds.items():
        median = statistics.median(runs)
        result[key] = {
            "seconds": round(median, 3),
            "seconds_all_runs": [round(s, 3) for s in runs],
            "sentences_per_second": round(len(words) / median, 1),
            "tokens_per_second": round(n_tokens / median, 1),
        }
    def ratio_to_transformer(key: str) -> float:
        return round(result[key]["tokens_per_second"] / result["transformer_alone"]["tokens_per_second"], 3)

    result["ratio_full_to_transformer"] = ratio_to_transformer("full_pipeline")
    result["ratio_full_to_transformer_built_span_representations"] = ratio_to_transformer(
        "full_pipeline_built_span_representations")
    result["docs_predicted_differently_with_built_span_representations"] = sum(
        a != b for a, b in zip(predictions["full_pipeline"], predictions["full_pipeline_built_span_representations"])
    )
    result["peak_memory_gib"] = peak_memory_gib()
    return result


def predicted_outputs(doc, spans_key: str) -> tuple:
    """A doc's predicted entities and relations, without their scores."""
    entities = tuple((span.start, span.end, span.label_) for span in doc.spans.get(spans_key, []))
    relations = tuple((tuple(rel.head), tuple(rel.tail), rel.label) for rel in doc._.relations or [])
    return entities, relations


def encoder_precision_of(nlp) -> str:
    """What the pipeline's encoder predicts in: "float32", "bfloat16" or "int8"."""
    from spacy_spanjoint.encoder.precision import effective_precision

    return effective_precision(transformer_of(nlp)[1].model)


def load_with_precision(model_dir: Path, precision: str):
    """The pipeline on the CPU with its encoder's `predict_precision` set
    ("float32", "bfloat16"), or quantized to int8 ("int8")."""
    import spacy

    from spacy_spanjoint import quantize_encoder

    setting = "float32" if precision == "int8" else precision
    nlp = spacy.load(model_dir, config={"components": {"transformer": {"model": {"predict_precision": setting}}}})
    return quantize_encoder(nlp) if precision == "int8" else nlp


def encoder_precisions(model_dir: Path, test_path: Path, batch_size: int, repeats: int, limit: int) -> dict:
    """Throughput and test F1 of the full pipeline with a float32, a bfloat16
    (autocast) and an int8 (dynamic quantization) encoder, on the CPU.

    The pipelines live in one process and are timed alternately, `repeats`
    times; the median run of each is reported, with its speed-up over float32.
    """
    from spacy.training import Example

    from spacy_spanjoint.encoder.precision import has_native_bfloat16

    pipelines = {name: load_with_precision(model_dir, name) for name in PRECISIONS}
    gold = gold_test_docs(pipelines["float32"], test_path, limit)
    words = gold_words(pipelines["float32"], gold)
    runs = {name: [] for name in pipelines}
    predicted = {}
    for nlp in pipelines.values():
        timed_pipe(nlp, words[:batch_size], batch_size)  # warm-up
    for _ in range(repeats):
        for name, nlp in pipelines.items():
            seconds, predicted[name] = timed_pipe(nlp, words, batch_size)
            runs[name].append(seconds)
    result = {"sentences": len(words), "batch_size": batch_size, "repeats": repeats,
              "native_bfloat16": has_native_bfloat16()}
    for name, nlp in pipelines.items():
        scores = nlp.get_pipe("spanjoint").score([Example(p, g) for p, g in zip(predicted[name], gold)])
        result[name] = {
            **rate(len(words), runs[name]),
            "ner_f": round(100 * scores["spans_entities_f"], 2),
            "re_strict_f": round(100 * scores["relations_f"], 2),
        }
    for name in PRECISIONS[1:]:
        result[name]["speedup"] = round(result[name]["sentences_per_second"] / result["float32"]["sentences_per_second"], 2)
    result["peak_memory_gib_all_pipelines"] = peak_memory_gib()
    return result


def batch_sizes(model_dir: Path, test_path: Path, sizes: List[int], repeats: int, limit: int, gpu_id: int) -> dict:
    """Sentences/s of the full pipeline at each `nlp.pipe` batch size.

    The sizes are timed alternately `repeats` times in one process, and the
    median run of each is reported, so a slow moment of the machine hits all.
    A batch size above the number of sentences is one batch of all of them.
    """
    nlp = load_pipeline(model_dir, gpu_id)
    words = test_docs(nlp, test_path, limit)
    timed_pipe(nlp, words[: max(sizes)], max(sizes))  # warm-up
    runs = {size: [] for size in sizes}
    for _ in range(repeats):
        for size in sizes:
            runs[size].append(timed_pipe(nlp, words, size)[0])
    return {
        "sentences": len(words),
        "repeats": repeats,
        "by_batch_size": {str(size): rate(len(words), seconds) for size, seconds in runs.items()},
        "peak_memory_gib": peak_memory_gib(),
    }


def long_doc(nlp, test_path: Path, n_tokens: int):
    """A Doc of exactly `n_tokens` tokens: the test sentences in order, repeated,
    with their sentence boundaries."""
    from spacy.tokens import Doc

    words, spaces, starts = [], [], []
    sentences = test_docs(nlp, test_path, 0)
    i = 0
    while len(words) < n_tokens:
        sentence = sentences[i % len(sentences)]
        words.extend(t.text for t in sentence)
        spaces.extend(True for _ in sentence)
        starts.extend([True] + [False] * (len(sentence) - 1))
        i += 1
    return Doc(nlp.vocab, words=words[:n_tokens], spaces=spaces[:n_tokens], sent_starts=starts[:n_tokens])


def measure_long_doc(model_dir: Path, test_path: Path, n_tokens: int, gpu_id: int) -> dict:
    """Seconds and peak memory for one document of `n_tokens` tokens (run in a fresh process)."""
    nlp = load_pipeline(model_dir, gpu_id)
    nlp(long_doc(nlp, test_path, min(n_tokens, 1000)))  # warm-up: first-call costs are not per token
    memory_before = peak_memory_gib()
    doc = long_doc(nlp, test_path, n_tokens)
    start = time.perf_counter()
    doc = nlp(doc)
    seconds = time.perf_counter() - start
    return {
        "tokens": len(doc),
        "sentences": sum(1 for _ in doc.sents),
        "seconds": round(seconds, 3),
        "seconds_per_1k_tokens": round(1000 * seconds / len(doc), 4),
        "peak_memory_gib": peak_memory_gib(),
        "peak_memory_before_doc_gib": memory_before,
        "entities": len(doc.spans["entities"]),
        "relations": len(doc._.relations),
    }


def in_subprocess(*args: str) -> dict:
    """Run one hidden measurement of this script in a fresh Python process."""
    result = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"benchmark step {args[0]} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def plot(report: dict, path: Path) -> None:
    """Seconds per 1k tokens and peak memory against document size, and throughput."""
    plt = pyplot()
    docs = report["long_documents"]
    sizes = [row["tokens"] for row in docs]
    fig, (ax_time, ax_memory, ax_speed, ax_batch) = plt.subplots(1, 4, figsize=(20, 4.2))
    per_1k = [row["seconds_per_1k_tokens"] for row in docs]
    ax_time.plot(sizes, per_1k, marker="o")
    ax_time.axhspan(per_1k[0] * 0.8, per_1k[0] * 1.2, color="green", alpha=0.12, label="±20% of the smallest doc")
    ax_time.set(xscale="log", xlabel="document tokens", ylabel="seconds per 1k tokens", title="Time per token")
    ax_time.set_ylim(bottom=0)
    ax_time.legend()
    ax_memory.plot(sizes, [row["peak_memory_gib"] for row in docs], marker="o", label="process peak RSS")
    ax_memory.axhline(2.0, color="red", linestyle="--", label="2 GiB")
    ax_memory.set(xscale="log", xlabel="document tokens", ylabel="GiB", title="Peak memory")
    ax_memory.set_ylim(bottom=0)
    ax_memory.legend()
    speed = report["throughput"]
    saved = speed.get("encoder_precision", "float32")
    labels = [f"transformer\nalone\n({saved})", f"full\npipeline\n({saved})"]
    values = [speed["transformer_alone"]["sentences_per_second"], speed["full_pipeline"]["sentences_per_second"]]
    if "full_pipeline_built_span_representations" in speed:
        labels.append(f"full, span\nreprs built\n({saved})")
        values.append(speed["full_pipeline_built_span_representations"]["sentences_per_second"])
    precisions = report.get("encoder_precision", {})
    for name in PRECISIONS:
        if name in precisions:
            # timed alternately with the other precisions, in a process of their own
            labels.append(f"full,\n{name}\nencoder")
            values.append(precisions[name]["sentences_per_second"])
    colors = ["grey", "tab:blue", "tab:cyan", "tab:purple", "tab:green", "tab:orange"]
    ax_speed.bar(labels, values, color=colors[: len(values)])
    ax_speed.tick_params(axis="x", labelsize=8)
    ax_speed.set(ylabel="sentences per second", title=f"Test sentences, batch {speed['batch_size']} (ratio {speed['ratio_full_to_transformer']})")
    if "batch_sizes" in report:
        by_size = report["batch_sizes"]["by_batch_size"]
        ax_batch.plot([int(size) for size in by_size], [row["sentences_per_second"] for row in by_size.values()], marker="o")
        ax_batch.set(xscale="log", xlabel="nlp.pipe batch size", ylabel="sentences per second",
                     title="Full pipeline by batch size")
        ax_batch.set_ylim(bottom=0)
    else:
        ax_batch.set_visible(False)
    fig.suptitle(f"{report['machine']['cpu']}, {report['machine']['torch_threads']} torch threads")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def main(
    model_dir: Path = typer.Argument(..., help="Trained pipeline (model-best)"),
    test_path: Path = typer.Argument(..., help="Test DocBin: throughput sentences and long-document material"),
    train_path: Path = typer.Argument(..., help="Training DocBin for the seconds per epoch"),
    output_path: Path = typer.Argument(..., help="JSON report; the plot goes beside it as .png"),
    configs: List[Path] = typer.Option(TRAIN_CONFIGS, "--config", help="Training configs to time (repeatable)"),
    batch_size: int = typer.Option(32, "--batch-size", help="nlp.pipe batch size for both throughputs"),
    pipe_batch_sizes: str = typer.Option(",".join(map(str, BATCH_SIZES)), "--batch-sizes", help="nlp.pipe batch sizes to time the full pipeline at"),
    repeats: int = typer.Option(3, "--repeats", help="Alternating runs of each throughput; the median is kept"),
    train_steps: int = typer.Option(30, "--train-steps", help="Timed nlp.update steps per config"),
    full_epoch: bool = typer.Option(False, "--full-epoch", help="Time one whole training epoch instead"),
    sizes: str = typer.Option(",".join(map(str, DOC_SIZES)), "--sizes", help="Long-document sizes in tokens"),
    quick: bool = typer.Option(False, "--quick", help="Reduced run for development: 64 sentences, 1 repeat, 3 steps, batch sizes 8 and 32, 1k and 2k tokens"),
    gpu_id: int = typer.Option(-1, "--gpu-id"),
    step: str = typer.Option("", "--step", hidden=True),
    step_arg: str = typer.Option("", "--step-arg", hidden=True),
):
    if step == "long-doc":
        print(json.dumps(measure_long_doc(model_dir, test_path, int(step_arg), gpu_id)))
        return
    if step == "precision":
        precision_repeats, precision_limit = map(int, step_arg.split(":"))
        print(json.dumps(encoder_precisions(model_dir, test_path, batch_size, precision_repeats, precision_limit)))
        return
    if step == "batch-sizes":
        sizes_arg, batch_repeats, batch_limit = step_arg.split(":")
        print(json.dumps(batch_sizes(model_dir, test_path, [int(x) for x in sizes_arg.split(",")],
                                     int(batch_repeats), int(batch_limit), gpu_id)))
        return
    if step == "throughput":
        throughput_repeats, throughput_limit = map(int, step_arg.split(":"))
        print(json.dumps(throughput(model_dir, test_path, batch_size, throughput_repeats, throughput_limit, gpu_id)))
        return
    if step == "train":
        steps, full = step_arg.split(":")
        print(json.dumps(measure_training(Path(configs[0]), train_path, int(steps), full == "1", gpu_id)))
        return
    pyplot()  # the report ends with a plot: stop now, not after the measurements, without matplotlib
    doc_sizes = QUICK_DOC_SIZES if quick else [int(s) for s in sizes.split(",")]
    timed_batch_sizes = QUICK_BATCH_SIZES if quick else [int(s) for s in pipe_batch_sizes.split(",")]
    limit, repeats, train_steps = (64, 1, 3) if quick else (0, repeats, train_steps)
    common = [str(model_dir), str(test_path), str(train_path), str(output_path), "--gpu-id", str(gpu_id)]
    report = {"command": " ".join(["python"] + sys.argv), "quick": quick, "machine": machine(gpu_id)}
    typer.echo("throughput on the test sentences ...")
    report["throughput"] = throughput(model_dir, test_path, batch_size, repeats, limit, gpu_id)
    if gpu_id < 0:
        typer.echo("float32, bfloat16 and int8 encoders on the test sentences ...")
        report["encoder_precision"] = in_subprocess(*common, "--batch-size", str(batch_size), "--step", "precision",
                                                    "--step-arg", f"{repeats}:{limit}")
    typer.echo(f"full pipeline at batch sizes {timed_batch_sizes} ...")
    report["batch_sizes"] = in_subprocess(*common, "--step", "batch-sizes", "--step-arg",
                                          f"{','.join(map(str, timed_batch_sizes))}:{repeats}:{limit}")
    report["long_documents"] = []
    for size in doc_sizes:
        typer.echo(f"document of {size} tokens ...")
        report["long_documents"].append(in_subprocess(*common, "--step", "long-doc", "--step-arg", str(size)))
    report["training"] = {}
    for config in configs:
        typer.echo(f"training steps of {config} ...")
        report["training"][Path(config).stem] = in_subprocess(
            *common, "--config", str(config), "--step", "train", "--step-arg", f"{train_steps}:{int(full_epoch)}"
        )
    per_1k = [row["seconds_per_1k_tokens"] for row in report["long_documents"]]
    report["summary"] = {
        "ratio_full_to_transformer": report["throughput"]["ratio_full_to_transformer"],
        "seconds_per_1k_tokens_max_deviation_from_smallest": round(max(abs(x / per_1k[0] - 1) for x in per_1k), 3),
        "peak_memory_largest_doc_gib": report["long_documents"][-1]["peak_memory_gib"],
        "targets": "ratio >= 0.8; seconds per 1k tokens within ±20% of the 1k doc; < 2 GiB on the 32k doc",
    }
    report["summary"]["sentences_per_second_by_batch_size"] = {
        size: row["sentences_per_second"] for size, row in report["batch_sizes"]["by_batch_size"].items()
    }
    if "encoder_precision" in report:
        precisions = report["encoder_precision"]
        report["summary"]["encoder_precision"] = {
            name: {key: value for key, value in precisions[name].items() if key != "seconds_all_runs"}
            for name in PRECISIONS
        }
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    output_path.parent.mkdir(parents=True, exist_ok=True)
    output_path.write_text(json.dumps(report, indent=2) + "\n")
    plot(report, output_path.with_suffix(".png"))
    typer.echo(json.dumps(report["summary"], indent=2))
    typer.echo(f"wrote {output_path} and {output_path.with_suffix('.png')}")


if __name__ == "__main__":
    typer.run(main)
