"""The `spanjoint` command line: argument parsing and printing only.

The work is done in `data/corpus.py` and `data/stats.py`. Add a command by decorating a
function with `@app.command(...)`; `python -m spacy_spanjoint` and the
`spanjoint` console script both run `app`.
"""

from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, NoReturn, Optional

import srsly
import typer
from wasabi import msg

from .data.corpus import (
    ENTITIES_KEY,
    CorpusError,
    Problem,
    count_dropped,
    count_ents_fallbacks,
    docs_to_spert,
    read_docbin,
    read_spert_json,
    write_docbin,
    write_spert_json,
)
from .data.outputs import OutputError, atomic_path, check_not_input
from .data.stats import DISTANCE_DEFINITION, corpus_stats, count_annotations

app = typer.Typer(
    name="spanjoint",
    help="spacy-spanjoint: joint entity and relation extraction for spaCy.",
    no_args_is_help=True,
    add_completion=False,
)
# How many individual problems to list after the counts with --skip-invalid.
MAX_LISTED_PROBLEMS = 20

SPANS_KEY_OPTION = typer.Option(
    ENTITIES_KEY, "--spans-key", "-k", help="doc.spans key of the entities"
)


def _input_file(help: str) -> Any:
    return typer.Argument(..., help=help, exists=True, dir_okay=False)


def _refuse_overwriting_inputs(output_path: Path, *inputs: Optional[Path]) -> None:
    try:
        check_not_input(output_path, *inputs)
    except OutputError as err:
        msg.fail("Refusing to overwrite an input", str(err), exits=1)


@contextmanager
def _writing(output_path: Path) -> Iterator[None]:
    """Turn a failure to write the output into a one-line error (the writers
    are atomic, so an existing output is left as it was)."""
    try:
        yield
    except OutputError as err:
        msg.fail(f"Could not write {output_path}", str(err), exits=1)
    except OSError as err:
        msg.fail(f"Could not write {output_path}", f"{err.strerror or err} ({err.filename or output_path})", exits=1)


def _load_pipeline(model: str, config: Optional[Dict[str, Any]] = None) -> Any:
    import spacy

    try:
        return spacy.load(model, config=config or {})
    except (OSError, ValueError) as err:
        msg.fail(f"Could not load the pipeline {model!r}", str(err), exits=1)


def _read_docbin(path: Path, vocab: Any = None) -> List[Any]:
    try:
        return read_docbin(path, vocab)
    except CorpusError as err:
        _fail(err.problems)


def _warn_about_entities(docs: List[Any], spans_key: str) -> None:
    fallbacks = count_ents_fallbacks(docs, spans_key)
    if fallbacks:
        msg.warn(f"{fallbacks} of {len(docs)} docs have no doc.spans[{spans_key!r}]: their doc.ents were used as entities")
    elif docs and not any(spans_key in doc.spans or doc.ents for doc in docs):
        keys = sorted({key for doc in docs for key in doc.spans})
        msg.warn(
            f"No doc has entities in doc.spans[{spans_key!r}] or doc.ents"
            + (f" (doc.spans keys found: {', '.join(keys)}; see --spans-key)" if keys else "")
        )


@app.command("convert")
def convert_cli(
    input_path: Path = _input_file("SpERT JSON corpus"),
    output_path: Path = typer.Argument(..., help="Output .spacy file", dir_okay=False),
    types_path: Path = typer.Option(
        ..., "--types", "-t", help="The corpus's *_types.json file", exists=True, dir_okay=False
    ),
    skip_invalid: bool = typer.Option(
        False,
        "--skip-invalid",
        help="Drop invalid sentences, entities and relations (and report them) instead of failing",
    ),
    spans_key: str = SPANS_KEY_OPTION,
) -> None:
    """Convert a SpERT JSON corpus into a .spacy file (DocBin with user data).

    Entities go to doc.spans["entities"] (see --spans-key), relations to doc._.relations,
    orig_id to doc._.orig_id and the symmetric relation types to every Doc.
    Any invalid input fails the conversion with the list of all problems,
    unless --skip-invalid is given.
    """
    _refuse_overwriting_inputs(output_path, input_path, types_path)
    try:
        docs, problems = read_spert_json(
            input_path, types_path, skip_invalid=skip_invalid, spans_key=spans_key
        )
    except CorpusError as err:
        _fail(err.problems)
    duplicates = [problem for problem in problems if not problem.fatal]
    dropped = [problem for problem in problems if problem.fatal]
    if duplicates:
        _report_duplicates(duplicates)
    if dropped:
        _report_dropped(dropped)
        if not docs:
            msg.fail(f"No valid sentence left in {input_path}: nothing written", exits=1)
    with _writing(output_path):
        write_docbin(docs, output_path)
    _report_written("Converted", docs, spans_key, output_path)


@app.command("export")
def export_cli(
    input_path: Path = _input_file("Gold or predicted .spacy file"),
    output_path: Path = typer.Argument(..., help="Output SpERT JSON file", dir_okay=False),
    spans_key: str = SPANS_KEY_OPTION,
) -> None:
    """Export a .spacy file to SpERT JSON (the reverse of convert).

    Relation heads and tails become indices of the entities with the same
    offsets; a relation whose offsets match no entity is an error.
    """
    _refuse_overwriting_inputs(output_path, input_path)
    docs = _read_docbin(input_path)
    _warn_about_entities(docs, spans_key)
    try:
        sentences = docs_to_spert(docs, spans_key=spans_key, file=str(input_path))
    except CorpusError as err:
        _fail(err.problems)
    with _writing(output_path):
        write_spert_json(sentences, output_path)
    _report_written("Exported", docs, spans_key, output_path)


@app.command("stats")
def stats_cli(
    input_path: Path = _input_file("Gold or predicted .spacy file"),
    output_path: Optional[Path] = typer.Option(
        None,
        "--output",
        "-o",
        help="JSON file for the statistics (default: INPUT.stats.json next to the input)",
        dir_okay=False,
    ),
    spans_key: str = SPANS_KEY_OPTION,
) -> None:
    """Print and save corpus statistics.

    Entity and relation type counts, overlapping entity pairs, sentence
    lengths and the entity distance of the relations, bucketed as in Table 2
    of the two-phase paper. Entity distance: the number of tokens strictly
    between the head and tail spans (0 when they touch or overlap).
    """
    output_path = output_path or input_path.with_suffix(".stats.json")
    _refuse_overwriting_inputs(output_path, input_path)
    docs = _read_docbin(input_path)
    _warn_about_entities(docs, spans_key)
    stats = corpus_stats(docs, spans_key=spans_key)
    _print_stats(stats)
    with _writing(output_path), atomic_path(output_path) as temporary:
        srsly.write_json(temporary, stats)
    msg.good(f"Saved statistics to {output_path}")


def _report_written(verb: str, docs: List[Any], spans_key: str, output_path: Path) -> None:
    counts = count_annotations(docs, spans_key)
    msg.good(
        f"{verb} {counts['docs']} docs ({counts['entities']} entities, "
        f"{counts['relations']} relations) to {output_path}"
    )


def _fail(problems: List[Problem]) -> NoReturn:
    msg.fail(f"{len(problems)} problem(s) found")
    _list_problems(problems)
    raise typer.Exit(code=1)


def _report_duplicates(duplicates: List[Problem]) -> None:
    sentences = sorted({(problem.index, repr(problem.orig_id)) for problem in duplicates})
    names = ", ".join(f"sentence {index} (orig_id {orig_id})" for index, orig_id in sentences[:MAX_LISTED_PROBLEMS])
    more = f" and {len(sentences) - MAX_LISTED_PROBLEMS} more" if len(sentences) > MAX_LISTED_PROBLEMS else ""
    msg.warn(
        f"Dropped {len(duplicates)} exact duplicate relation(s) (same head, tail and type) "
        f"in {len(sentences)} sentence(s): {names}{more}"
    )


def _report_dropped(problems: List[Problem]) -> None:
    dropped = count_dropped(problems)
    plurals = {"sentence": "sentences", "entity": "entities", "relation": "relations"}
    summary = ", ".join(
        f"{dropped[item]} {item if dropped[item] == 1 else plurals[item]}"
        for item in plurals
        if item in dropped
    )
    msg.warn(f"Dropped {summary} with {len(problems)} problem(s)")
    reasons = Counter((problem.item, problem.reason) for problem in problems)
    msg.table(
        [(item, reason, n) for (item, reason), n in sorted(reasons.items())],
        header=("Dropped", "Reason", "Problems"),
        divider=True,
        aligns=("l", "l", "r"),
    )
    _list_problems(problems[:MAX_LISTED_PROBLEMS])
    if len(problems) > MAX_LISTED_PROBLEMS:
        hidden = len(problems) - MAX_LISTED_PROBLEMS
        msg.text(f"... and {hidden} more (run without --skip-invalid to list all)")


def _list_problems(problems: List[Problem]) -> None:
    # Plain echo, not msg.text: one unwrapped line per problem stays greppable.
    for problem in problems:
        typer.echo(f"- {problem}")


def _print_stats(stats: Dict[str, Any]) -> None:
    msg.divider("Corpus")
    msg.table(
        [
            ("Docs", stats["docs"]),
            ("Tokens", stats["tokens"]),
            ("Entities", stats["entities"]),
            ("Relations", stats["relations"]),
        ],
        aligns=("l", "r"),
    )
    msg.divider("Entity types")
    msg.table(list(stats["entity_types"].items()), aligns=("l", "r"))
    overlaps = stats["overlapping_entities"]
    msg.info(
        f"{overlaps['pairs']} overlapping entity pairs ({overlaps['nested_pairs']} nested, "
        f"{overlaps['crossing_pairs']} crossing) in {overlaps['docs']} docs"
    )
    msg.divider("Relation types")
    msg.table(list(stats["relation_types"].items()), aligns=("l", "r"))
    lengths = stats["sentence_length"]
    msg.divider("Sentence length (tokens)")
    msg.text(f"min {lengths['min']}, mean {lengths['mean']}, max {lengths['max']}")
    msg.table(
        list(lengths["percentiles"].items()), header=("Percentile", "Tokens"), aligns=("l", "r")
    )
    msg.table(list(lengths["histogram"].items()), header=("Tokens", "Docs"), aligns=("l", "r"))
    distance = stats["entity_distance"]
    msg.divider("Entity distance of relations")
    msg.text(f"Distance: {DISTANCE_DEFINITION}. Percent of each row:")
    buckets = distance["buckets"]
    rows = [("(all)", *_percent_row(distance["all"], buckets))]
    rows += [
        (label, *_percent_row(dist, buckets))
        for label, dist in distance["per_relation_type"].items()
    ]
    rows += [
        (label, *_percent_row(dist, buckets))
        for label, dist in distance["per_typed_relation"].items()
    ]
    msg.table(
        rows,
        header=("Relation", "Total", *buckets),
        divider=True,
        aligns=("l", *"r" * (len(buckets) + 1)),
    )


def _percent_row(distribution: Dict[str, Any], buckets: List[str]) -> List[Any]:
    return [distribution["total"], *(f"{distribution['percent'][name]}%" for name in buckets)]


@app.command("fetch-assets")
def fetch_assets_cli(
    project_file: Path = _input_file("The project.yml whose assets to fetch"),
    mirror: Optional[Path] = typer.Option(
        None, "--mirror", "-m", help="Local folder laid out like assets/ that stands in for the public URLs"
    ),
    include_optional: bool = typer.Option(False, "--include-optional", help="Also fetch optional assets (SciERC)"),
) -> None:
    """Fetch the corpora of project.yml (mirror first, then the public URL) and verify their sha256."""
    from .data.assets import AssetError, fetch_assets

    if mirror is not None and not mirror.is_dir():
        msg.warn(f"Mirror folder {mirror} does not exist; using the public URLs")
        mirror = None
    try:
        results = fetch_assets(project_file, mirror, include_optional)
    except AssetError as error:
        msg.fail("Some assets could not be fetched", str(error), exits=1)
    for dest, source in results.items():
        msg.good(f"{dest} ({'already present' if source == 'present' else 'from ' + source})")


@app.command("prepare-package")
def prepare_package_cli(
    model_path: Path = typer.Argument(..., help="Trained pipeline folder", exists=True, file_okay=False),
    output_path: Path = typer.Argument(..., help="Folder for the prepared copy", file_okay=False),
    name: str = typer.Option("spanjoint", "--name", "-n", help="Pipeline name without the language prefix"),
    version: str = typer.Option("0.1.0", "--version", "-v", help="Pipeline version"),
) -> None:
    """Copy a trained pipeline for `spacy package`: a sentencizer first, name,
    version and the requirements (spacy-spanjoint included) in its meta.

    Then build the package with `python -m spacy package OUTPUT_PATH DIR --build wheel`.
    """
    from .data.packaging import prepare_pipeline

    _refuse_overwriting_inputs(output_path, model_path)
    meta = prepare_pipeline(model_path, output_path, name=name, version=version)
    msg.good(
        f"Saved {meta['lang']}_{meta['name']} {meta['version']} to {output_path}",
        f"pipeline: {', '.join(meta['pipeline'])}; requirements: {', '.join(meta['requirements'])}",
    )


@app.command("predict")
def predict_cli(
    model: str = typer.Argument(..., help="Pipeline: a folder or an installed package such as en_spanjoint"),
    input_path: Path = typer.Argument(
        ..., help="Input: .txt (one document per line) or JSONL with a 'text' field; --engine ray: also Parquet, or a folder", exists=True
    ),
    output_path: Path = typer.Argument(..., help="Output file; --engine ray: a folder of shards"),
    output_format: str = typer.Option("jsonl", "--format", "-f", help="Output format: jsonl, csv or spert; --engine ray: jsonl or parquet"),
    batch_size: int = typer.Option(32, "--batch-size", "-b", help="Documents per batch", min=1),
    n_process: int = typer.Option(1, "--n-process", "-n", help="Processes for nlp.pipe", min=1),
    int8: bool = typer.Option(False, "--int8", help="Quantize the encoder to int8 first: faster on a CPU, slightly less accurate"),
    precision: Optional[str] = typer.Option(
        None, "--precision", help="Encoder precision: float32, bfloat16 or auto (default: the pipeline's own setting)"
    ),
    input_format: Optional[str] = typer.Option(
        None, "--input-format", help="txt or jsonl (default: txt for a .txt file, else jsonl; set it for a pipe)"
    ),
    escape_formulas: bool = typer.Option(
        True,
        "--escape-formulas/--keep-formulas",
        help="CSV: prefix text cells starting with = + - @ with ' so spreadsheets do not run them as formulas",
    ),
    engine: str = typer.Option("local", "--engine", help="local (nlp.pipe here) or ray (Ray Data, see docs/scale.md)"),
    address: Optional[str] = typer.Option(None, "--address", help="--engine ray: the Ray cluster to join (default: start Ray here)"),
    actors: int = typer.Option(1, "--actors", help="--engine ray: actors, each with its own pipeline", min=1),
    shard_size: int = typer.Option(1000, "--shard-size", help="--engine ray: documents per output shard", min=1),
    num_cpus: Optional[int] = typer.Option(None, "--num-cpus", help="--engine ray without --address: CPUs of the local Ray", min=1),
) -> None:
    """Predict entities and relations for every document of a file.

    jsonl: the input fields plus entities (character offsets, label, score) and
    relations (head and tail index into the entities, label, score).
    csv: one triple a row. spert: the SpERT JSON corpus format.
    A bad input line is reported as FILE:LINE: REASON and skipped; the command
    then exits with code 1 after writing everything else. The output is
    written to a temporary file that replaces it at the end, and never the input.
    With --int8 the encoder runs int8 dynamic quantization (CPU only); with
    --precision bfloat16 it runs under bfloat16 autocast (`spacy_spanjoint.encoder.precision`).
    """
    from tqdm import tqdm

    from .encoder.precision import PRECISIONS
    from .data.predict import FORMATS, INPUT_FORMATS, count_lines, predict_file, require_spanjoint
    from .encoder.quantization import quantize_encoder

    if precision is not None and precision not in PRECISIONS:
        msg.fail(f"Unknown --precision {precision!r}; expected one of {', '.join(PRECISIONS)}", exits=1)
    if input_format is not None and input_format not in INPUT_FORMATS:
        msg.fail(f"Unknown --input-format {input_format!r}; expected one of {', '.join(INPUT_FORMATS)}", exits=1)
    _refuse_overwriting_inputs(output_path, input_path)
    overrides = {} if precision is None else {"components": {"transformer": {"model": {"predict_precision": precision}}}}
    if engine == "ray":
        _predict_on_ray(model, input_path, output_path, output_format, batch_size, shard_size, actors, address, num_cpus, overrides, int8)
        return
    if engine != "local":
        msg.fail(f"Unknown --engine {engine!r}; expected local or ray", exits=1)
    if output_format not in FORMATS:
        msg.fail(f"Unknown --format {output_format!r}; expected one of {', '.join(FORMATS)}", exits=1)
    if input_path.is_dir() or output_path.is_dir():
        msg.fail("A folder as input or output needs --engine ray", exits=1)
    nlp = _load_pipeline(model, overrides)
    try:
        require_spanjoint(nlp)
    except ValueError as err:
        msg.fail(f"Cannot predict with {model!r}", str(err), exits=1)
    if int8:
        quantize_encoder(nlp)
    with tqdm(total=count_lines(input_path), unit="doc", desc="predict", leave=False) as bar:

        def report(problem: Any) -> None:
            bar.write(f"Bad input line: {problem}")
            bar.update(1)

        def counted(docs: Any) -> Any:
            for item in docs:
                bar.update(1)
                yield item

        with _writing(output_path):
            written, problems = predict_file(
                nlp, input_path, output_path, output_format, batch_size, n_process, report, counted,
                escape_formulas=escape_formulas, input_format=input_format,
            )
    msg.good(f"Wrote {written} documents to {output_path} ({output_format})")
    if problems:
        msg.fail(f"Skipped {len(problems)} bad input line(s) of {input_path}", exits=1)


def _predict_on_ray(
    model: str, input_path: Path, output_path: Path, output_format: str, batch_size: int, shard_size: int,
    actors: int, address: Optional[str], num_cpus: Optional[int], overrides: Dict[str, Any], int8: bool,
) -> None:
    try:
        from .scale import OUTPUT_FORMATS, ray_session, run_job
        import ray.data  # noqa: F401
    except ImportError as err:
        msg.fail(f"--engine ray needs the ray extra: pip install 'spacy-spanjoint[ray]' ({err})", exits=1)
    if output_format not in OUTPUT_FORMATS:
        msg.fail(f"Unknown --format {output_format!r} for --engine ray; expected one of {', '.join(OUTPUT_FORMATS)}", exits=1)
    try:
        with ray_session(address, num_cpus):
            summary = run_job(
                model, input_path, output_path, output_format=output_format, actors=actors,
                batch_size=batch_size, shard_size=shard_size, config=overrides, int8=int8,
            )
    except ValueError as err:  # the input or the output folder (see scale/shards.py)
        msg.fail(str(err), exits=1)
    msg.good(
        f"Wrote {summary['shards_written']} shard(s) to {output_path} ({summary['shards_skipped']} of "
        f"{summary['shards']} already complete): {summary['documents']} documents, {summary['errors']} errors, "
        f"{summary['seconds']} s"
    )
    if summary["errors"]:
        msg.fail(f"{summary['errors']} document(s) became error records (their 'error' field says why)", exits=1)


@app.command("serve-api")
def serve_api_cli(
    model: str = typer.Argument(..., help="Pipeline: a folder or an installed package such as en_spanjoint"),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (0.0.0.0 exposes the service to the network)"),
    port: int = typer.Option(8080, "--port", help="Port"),
    workers: int = typer.Option(1, "--workers", help="uvicorn worker processes, each loading the pipeline once", min=1),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch threads per worker (default: CPUs / workers)", min=1),
    max_body_bytes: int = typer.Option(1_000_000, "--max-body-bytes", help="Largest request body", min=1),
    max_texts: int = typer.Option(64, "--max-texts", help="Texts per request", min=1),
    max_chars: int = typer.Option(20_000, "--max-chars", help="Characters per text", min=1),
    max_queued_texts: int = typer.Option(1024, "--max-queued-texts", help="Texts waiting per worker before 503", min=1),
) -> None:
    """Serve the pipeline over HTTP: POST /extract, GET /health, GET /meta, docs at /docs.

    See docs/service.md for the request and answer formats and the limits.
    """
    import json
    import os

    try:
        import uvicorn

        from .service.app import LIMITS_ENV, MODEL_ENV, Limits
    except ImportError as err:
        msg.fail(f"serve-api needs the serve extra: pip install 'spacy-spanjoint[serve]' ({err})", exits=1)
    limits = Limits(
        max_body_bytes=max_body_bytes, max_texts=max_texts, max_chars=max_chars,
        max_queued_texts=max_queued_texts, threads=threads or max(1, (os.cpu_count() or 1) // workers),
    )
    # Each worker process builds its own app from these (uvicorn imports the factory by name).
    os.environ[MODEL_ENV] = model
    os.environ[LIMITS_ENV] = json.dumps(limits.__dict__)
    uvicorn.run(
        "spacy_spanjoint.service.app:app_from_environment", factory=True, host=host, port=port, workers=workers
    )


@app.command("visualize")
def visualize_cli(
    model: str = typer.Argument(..., help="Pipeline: a folder or an installed package"),
    gold_path: Path = _input_file("Gold .spacy file (e.g. corpus/conll04_test.spacy)"),
    output_path: Path = typer.Argument(..., help="Output HTML page", dir_okay=False),
    limit: int = typer.Option(20, "--limit", "-l", help="Number of documents to show", min=1),
    start: int = typer.Option(0, "--start", help="Index of the first document", min=0),
    with_relations: bool = typer.Option(
        False, "--with-relations", help="Only documents with at least one gold relation"
    ),
    screenshot_path: Optional[Path] = typer.Option(
        None, "--screenshot", help="Also save a PNG of the top of the page (needs Chromium)", dir_okay=False
    ),
    height: int = typer.Option(900, "--height", help="Screenshot height in pixels", min=100),
) -> None:
    """Write a page comparing gold and predicted entities and relations.

    Entities are highlighted (nested ones stacked) and relations drawn as arcs
    from head to tail; each is marked TP, FP or missed.
    """
    from spacy.tokens import Doc

    from .data.outputs import atomic_output
    from .data.predict import spans_key_of
    from .data.visualize import render, screenshot

    _refuse_overwriting_inputs(output_path, gold_path)
    if screenshot_path is not None:
        _refuse_overwriting_inputs(screenshot_path, gold_path, output_path)
    nlp = _load_pipeline(model)
    gold = _read_docbin(gold_path, nlp.vocab)[start:]
    if with_relations:
        gold = [doc for doc in gold if doc._.relations]
    gold = gold[:limit]
    inputs = [Doc(nlp.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc]) for doc in gold]
    predicted = list(nlp.pipe(inputs))
    titles = [f"{i + 1}. {gold_path.name} orig_id {doc._.orig_id}" for i, doc in enumerate(gold)]
    page = render(predicted, gold=gold, page=True, jupyter=False, spans_key=spans_key_of(nlp), titles=titles)
    with _writing(output_path), atomic_output(output_path) as file:
        file.write(page)
    msg.good(f"Saved {len(gold)} documents to {output_path}")
    if screenshot_path is not None:
        try:
            screenshot(output_path, screenshot_path, height=height)
        except RuntimeError as err:
            msg.fail("Could not take the screenshot", str(err), exits=1)
        msg.good(f"Saved a screenshot to {screenshot_path}")
