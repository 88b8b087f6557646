"""displaCy views of entities and relations.

Each Doc is drawn with two of displaCy's own renderers, fed through its manual
data formats:

- the "span" style shows the text with every entity underlined and labelled,
  nested and overlapping entities stacked below each other;
- the "dep" style draws the relations as labelled arcs from head to tail
  between the entities. Its "words" are the entities themselves (in text
  order, an outer entity before the entities nested in it), so that a nested
  entity is a node of its own.

With gold Docs (`render(docs, gold=gold_docs)`), both views mark each entity
and relation as a true positive, a false positive or a miss. Relations match
on head and tail offsets and label, in either order for the symmetric labels
stored on the gold Doc.

Everything that comes from data (texts, entity and relation labels, titles)
is HTML-escaped before it reaches the page: displaCy escapes the token texts
itself, but not the labels it is given.
"""
import html
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from spacy import displacy
from spacy.tokens import Doc
from spacy.util import is_in_jupyter

from ..pipeline.relations import SYMMETRIC_LABELS_KEY, register_extensions
from .corpus import ENTITIES_KEY

TP, FP, FN = "TP", "FP", "missed"
STATUS_COLORS = {TP: "#8fd694", FP: "#ff9b9b", FN: "#ffd166"}
# Arc colours: the span colours are too light for thin lines on white.
ARC_COLORS = {TP: "#1b7f3b", FP: "#c62828", FN: "#b26a00"}
STATUS_NAMES = {TP: "true positive", FP: "false positive", FN: "missed (gold only)"}
PALETTE = ("#7aecec", "#bfeeb7", "#feca74", "#ff9561", "#aa9cfc", "#c887fb", "#9cc9cc", "#e4e7d2")
# Node spacing of the arc view: pixels per character of the longest text, within bounds.
PX_PER_CHAR, MIN_DISTANCE, MAX_DISTANCE = 8, 100, 260
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Headless, offline, no profile left behind: nothing but the page is loaded.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
# Style of the rendered Docs, in pages and in Jupyter; labels must not wrap
# inside a short token.
DOC_STYLE = """
.spanjoint-doc .spans span span { white-space: nowrap; }
.spanjoint-doc { border-top: 1px solid #ddd; padding: 0.5rem 0 1rem; }
.spanjoint-title { font-size: 1rem; margin: 0.5rem 0; color: #444; }
.spanjoint-arcs { overflow-x: auto; }
.spanjoint-legend span { padding: 2px 6px; border-radius: 3px; margin-right: 0.5rem; }
"""
PAGE_STYLE = "body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; padding: 1.5rem 2rem; }"
Node = Tuple[int, int, str]  # token start, token end, label


def render(
    docs: Union[Doc, Iterable[Doc]],
    gold: Optional[Union[Doc, Iterable[Doc]]] = None,
    page: bool = False,
    minify: bool = False,
    jupyter: Optional[bool] = None,
    options: Optional[Dict[str, Any]] = None,
    spans_key: str = ENTITIES_KEY,
    titles: Optional[Sequence[str]] = None,
) -> Any:
    """Render entities and relations of Docs as HTML, like `displacy.render`.

    docs (Doc / Iterable[Doc]): The (predicted) Docs.
    gold (Optional[Doc / Iterable[Doc]]): Gold Docs with the same tokens, one
        per Doc: entities and relations are then marked TP, FP or missed.
    page (bool): Return a standalone HTML page instead of a fragment.
    minify (bool): Minify the markup of displaCy's renderers.
    jupyter (Optional[bool]): Display the result in Jupyter; None detects it.
    options (Optional[Dict[str, Any]]): "colors" (entity label -> CSS colour),
        "scores" (show the prediction scores, default False) and any option of
        displaCy's "dep" renderer for the arcs (e.g. "distance", "compact").
    spans_key (str): The `doc.spans` key of the entities.
    titles (Optional[Sequence[str]]): A heading per Doc.
    RETURNS (str): The HTML, or None when it was displayed in Jupyter.
    """
    register_extensions()
    docs = [docs] if isinstance(docs, Doc) else list(docs)
    gold_docs = _match_gold(docs, gold)
    options = dict(options or {})
    parts = []
    for i, doc in enumerate(docs):
        title = titles[i] if titles is not None and i < len(titles) else None
        parts.append(render_doc(doc, gold_docs[i], options, spans_key, title, minify))
    markup = f"<style>{DOC_STYLE}</style>\n" + "\n".join(parts)
    if page:
        markup = _page(markup, compare=gold is not None)
    if jupyter or (jupyter is None and is_in_jupyter()):
        from IPython.display import HTML, display

        return display(HTML(markup))
    return markup


def render_doc(
    doc: Doc,
    gold: Optional[Doc],
    options: Dict[str, Any],
    spans_key: str = ENTITIES_KEY,
    title: Optional[str] = None,
    minify: bool = False,
) -> str:
    """Render one Doc: the span view, then the arcs (when it has relations).

    doc (Doc): The (predicted) Doc.
    gold (Optional[Doc]): Its gold Doc, to mark TP, FP and missed items.
    options (Dict[str, Any]): See `render`.
    spans_key (str): The `doc.spans` key of the entities.
    title (Optional[str]): A heading.
    minify (bool): Minify the markup of displaCy's renderers.
    RETURNS (str): An HTML `<div>`.
    """
    nodes, arcs = _nodes_and_arcs(doc, gold, spans_key, options.get("scores", False))
    colors = _colors(nodes, options.get("colors", {}))
    # displaCy's span renderer puts labels into the markup as they are
    spans = [
        {"start_token": node[0], "end_token": node[1], "label": html.escape(nodes[node][0])}
        for node in sorted(nodes, key=_node_order)
    ]
    span_html = displacy.render(
        {"text": doc.text, "tokens": [t.text for t in doc], "spans": spans},
        style="span",
        manual=True,
        minify=minify,
        jupyter=False,
        options={"colors": colors},
    )
    parts = [f'<div class="spanjoint-doc">']
    if title:
        parts.append(f'<h3 class="spanjoint-title">{html.escape(title)}</h3>')
    parts.append(span_html)
    if arcs:
        parts.append(f'<div class="spanjoint-arcs">{_render_arcs(doc, nodes, arcs, options, minify)}</div>')
    parts.append("</div>")
    return "\n".join(parts)


def serve(
    docs: Union[Doc, Iterable[Doc]],
    gold: Optional[Union[Doc, Iterable[Doc]]] = None,
    port: int = 5000,
    host: str = "127.0.0.1",
    **kwargs: Any,
) -> None:
    """Serve the page of `render(docs, gold, page=True)` until interrupted,
    like `displacy.serve`.

    docs (Doc / Iterable[Doc]): The (predicted) Docs.
    gold (Optional[Doc / Iterable[Doc]]): Their gold Docs, see `render`.
    port (int): The port to serve on.
    host (str): The address to serve on: this machine only by default;
        "0.0.0.0" serves every network the machine is on.
    **kwargs: Other arguments of `render`.
    """
    from wsgiref import simple_server

    markup = render(docs, gold=gold, page=True, jupyter=False, **kwargs).encode("utf8")

    def app(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
        start_response("200 OK", [("Content-type", "text/html; charset=utf-8")])
        return [markup]

    server = simple_server.make_server(host, port, app)
    print(f"Serving the spanjoint visualization on http://{host}:{port} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("Shutting down server on port", port)
    finally:
        server.server_close()


def screenshot(
    page_path: Union[str, Path],
    png_path: Union[str, Path],
    width: int = 1200,
    height: int = 900,
    chromium: Optional[str] = None,
) -> Path:
    """Take a PNG screenshot of an HTML file with headless Chromium.

    page_path (str / Path): The HTML file.
    png_path (str / Path): The PNG to write.
    width (int): Window width in pixels.
    height (int): Window height in pixels (the screenshot shows this much of the page).
    chromium (Optional[str]): The browser executable; found on PATH if None.
    RETURNS (Path): The PNG file.
    RAISES (RuntimeError): If no browser is found or it writes no PNG.
    """
    png_path = Path(png_path).resolve()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    run_chromium(
        [f"--window-size={width},{height}", f"--screenshot={png_path}", Path(page_path).resolve().as_uri()],
        chromium,
    )
    if not png_path.exists() or png_path.stat().st_size == 0:
        raise RuntimeError(f"Chromium wrote no screenshot to {png_path}")
    return png_path


def find_chromium() -> Optional[str]:
    """The path of a Chromium or Chrome executable on PATH, or None."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def run_chromium(arguments: List[str], chromium: Optional[str] = None, timeout: float = 120) -> str:
    """Run headless Chromium offline with a throwaway profile.

    arguments (List[str]): Arguments after the fixed flags, e.g. `--dump-dom URL`.
    chromium (Optional[str]): The browser executable; found on PATH if None.
    timeout (float): Seconds before the browser is stopped.
    RETURNS (str): What the browser printed to stdout.
    RAISES (RuntimeError): If no browser is found or it fails.
    """
    chromium = chromium or find_chromium()
    if chromium is None:
        raise RuntimeError(
            f"No Chromium found on PATH (tried {', '.join(CHROMIUM_NAMES)}); "
            "install it, e.g. `apt-get install -y chromium`"
        )
    with tempfile.TemporaryDirectory(prefix="spanjoint-chromium-") as profile:
        command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-2000:]}")
    return result.stdout


def _match_gold(docs: List[Doc], gold: Optional[Union[Doc, Iterable[Doc]]]) -> List[Optional[Doc]]:
    if gold is None:
        return [None] * len(docs)
    gold_docs = [gold] if isinstance(gold, Doc) else list(gold)
    if len(gold_docs) != len(docs):
        raise ValueError(f"render: got {len(docs)} docs but {len(gold_docs)} gold docs; pass one gold Doc per Doc")
    for i, (doc, reference) in enumerate(zip(docs, gold_docs)):
        if [t.text for t in doc] != [t.text for t in reference]:
            raise ValueError(f"render: doc {i} and its gold doc have different tokens: {doc.text!r} vs {reference.text!r}")
    return gold_docs


def _entities(doc: Doc, spans_key: str) -> Dict[Node, float]:
    if spans_key not in doc.spans:
        return {}
    group = doc.spans[spans_key]
    scores = group.attrs.get("scores", [1.0] * len(group))
    return {(span.start, span.end, span.label_): float(score) for span, score in zip(group, scores)}


def _relations(doc: Doc, entities: Dict[Node, float]) -> Dict[Tuple[Node, Node, str], float]:
    """Relations keyed by their head and tail nodes: the node of an entity with
    the relation's offsets (the first one if several labels share them)."""
    by_offsets: Dict[Tuple[int, int], Node] = {}
    for node in entities:
        by_offsets.setdefault(node[:2], node)
    relations = {}
    for relation in doc._.relations:
        head, tail = tuple(relation.head), tuple(relation.tail)
        # A relation with no entity at its offsets still gets a node.
        head_node = by_offsets.get(head, (*head, "?"))
        tail_node = by_offsets.get(tail, (*tail, "?"))
        relations[(head_node, tail_node, relation.label)] = relation.score
    return relations


def _nodes_and_arcs(
    doc: Doc, gold: Optional[Doc], spans_key: str, show_scores: bool
) -> Tuple[Dict[Node, Tuple[str, str]], List[Tuple[Node, Node, str, str]]]:
    """The display label and status ("" without gold) of every entity node and the arcs (head node, tail
    node, display label, status or "") of a Doc, compared with its gold Doc."""
    entities = _entities(doc, spans_key)
    relations = _relations(doc, entities)

    def shown(label: str, score: float) -> str:
        return f"{label} {score:.2f}" if show_scores else label

    if gold is None:
        nodes = {node: (shown(node[2], score), "") for node, score in entities.items()}
        for head, tail, _ in relations:
            nodes.setdefault(head, (head[2], ""))
            nodes.setdefault(tail, (tail[2], ""))
        arcs = [(head, tail, shown(label, score), "") for (head, tail, label), score in relations.items()]
        return nodes, arcs
    gold_entities = _entities(gold, spans_key)
    gold_relations = _relations(gold, gold_entities)
    symmetric = set(gold.user_data.get(SYMMETRIC_LABELS_KEY, ()))
    nodes = {}
    for node in {**gold_entities, **entities}:
        status = TP if node in gold_entities and node in entities else FP if node in entities else FN
        nodes[node] = (f"{node[2]} ({status})", status)
    arcs = []
    matched = set()
    for (head, tail, label), score in relations.items():
        key = next(
            (k for k in ((head, tail, label), (tail, head, label)) if k in gold_relations and k not in matched),
            None,
        )
        if key is not None and (key[0] == head or label in symmetric):
            matched.add(key)
            status = TP
        else:
            status = FP
        arcs.append((head, tail, f"{shown(label, score)} ({status})", status))
    for key in gold_relations:
        if key not in matched:
            arcs.append((key[0], key[1], f"{key[2]} ({FN})", FN))
    for head, tail, _, _ in arcs:
        nodes.setdefault(head, (f"{head[2]} ({FN})", FN))
        nodes.setdefault(tail, (f"{tail[2]} ({FN})", FN))
    return nodes, arcs


def _node_order(node: Node) -> Tuple[int, int, str]:
    # Text order; an outer entity before those nested in it.
    return (node[0], -node[1], node[2])


def _colors(nodes: Dict[Node, Tuple[str, str]], colors: Dict[str, str]) -> Dict[str, str]:
    """The span renderer's colours, keyed by the (escaped) display labels of the
    nodes: by status when compared with gold, else by entity label."""
    labels = sorted({node[2] for node in nodes})
    result = {}
    for (_, _, label), (display, status) in nodes.items():
        if status:
            result[html.escape(display)] = STATUS_COLORS[status]
        else:
            result[html.escape(display)] = colors.get(label, PALETTE[labels.index(label) % len(PALETTE)])
    return result


def _render_arcs(
    doc: Doc,
    nodes: Dict[Node, Tuple[str, str]],
    arcs: List[Tuple[Node, Node, str, str]],
    options: Dict[str, Any],
    minify: bool,
) -> str:
    order = sorted(nodes, key=_node_order)
    index = {node: i for i, node in enumerate(order)}
    words = [{"text": doc[start:end].text, "tag": html.escape(nodes[(start, end, label)][0])} for start, end, label in order]
    dep_arcs = []
    for head, tail, label, _ in arcs:
        h, t = index[head], index[tail]
        if h == t:
            continue
        dep_arcs.append(
            {"start": min(h, t), "end": max(h, t), "label": html.escape(label), "dir": "right" if t > h else "left"}
        )
    # Wide enough for the longest entity text, tag or arc label between neighbours.
    texts = [*(word["text"] for word in words), *(display for display, _ in nodes.values()), *(arc[2] for arc in arcs)]
    longest = max(len(text) for text in texts)
    dep_options = {k: v for k, v in options.items() if k not in ("colors", "scores")}
    dep_options.setdefault("distance", min(MAX_DISTANCE, max(MIN_DISTANCE, PX_PER_CHAR * longest)))
    # Room for half of the first entity's text left of its centre.
    dep_options.setdefault("offset_x", dep_options["distance"] // 2 + 10)
    svg = displacy.render(
        {"words": words, "arcs": dep_arcs}, style="dep", manual=True, minify=minify, jupyter=False, options=dep_options
    )
    statuses = [status for head, tail, _, status in arcs if index[head] != index[tail]]
    return _color_arcs(svg, statuses)


def _color_arcs(svg: str, statuses: List[str]) -> str:
    """Colour each arc of displaCy's dependency SVG by its status.

    displaCy draws the arcs in the order given, each in its own
    `<g class="displacy-arrow">` group painted with `currentColor`.
    """
    marker = '<g class="displacy-arrow">'
    pieces = svg.split(marker)
    for i, status in enumerate(statuses, start=1):
        if status and i < len(pieces):
            group, rest = pieces[i].split("</g>", 1)
            color = ARC_COLORS[status]
            group = group.replace("currentColor", color).replace(
                'class="displacy-arc"', f'class="displacy-arc spanjoint-{status.lower()}"'
            )
            pieces[i] = group + "</g>" + rest
    return marker.join(pieces)


def _page(markup: str, compare: bool) -> str:
    legend = ""
    if compare:
        legend = '<p class="spanjoint-legend">' + "".join(
            f'<span style="background: {STATUS_COLORS[s]}">{s}: {STATUS_NAMES[s]}</span>' for s in (TP, FP, FN)
        ) + "</p>"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>spacy-spanjoint: entities and relations</title>\n<style>{PAGE_STYLE}</style>\n</head>\n"
        f"<body>\n<h2>Entities and relations</h2>\n{legend}\n{markup}\n</body>\n</html>\n"
    )
