"""displaCy views of entities and relations: the markup, and the page as a
real headless browser renders it."""
import os
import re
import struct

import pytest
import spacy
from spacy.tokens import Doc, Span

from spacy_spanjoint import Relation, render
from spacy_spanjoint.data.visualize import find_chromium, run_chromium, screenshot

WORDS = ["The", "University", "of", "Oslo", "is", "in", "Norway", "and", "Anna", "works", "there", "."]
GOLD_ENTITIES = [(1, 4, "Org"), (3, 4, "Loc"), (6, 7, "Loc"), (8, 9, "Peop")]
GOLD_RELATIONS = [((1, 4), (6, 7), "OrgBased_In"), ((3, 4), (6, 7), "Located_In"), ((8, 9), (1, 4), "Work_For")]
# One relation right, one reversed (a false positive and a miss), one missed;
# "Anna" typed Org (a false positive and a miss).
PRED_ENTITIES = [(1, 4, "Org"), (3, 4, "Loc"), (6, 7, "Loc"), (8, 9, "Org")]
PRED_RELATIONS = [((1, 4), (6, 7), "OrgBased_In"), ((6, 7), (3, 4), "Located_In")]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_doc(entities, relations, scores=None):
    doc = Doc(spacy.blank("en").vocab, words=WORDS)
    doc.spans["entities"] = [Span(doc, start, end, label=label) for start, end, label in entities]
    if scores is not None:
        doc.spans["entities"].attrs["scores"] = scores
    doc._.relations = [Relation(head, tail, label, 0.75) for head, tail, label in relations]
    return doc


@pytest.fixture
def gold():
    return make_doc(GOLD_ENTITIES, GOLD_RELATIONS)


@pytest.fixture
def predicted():
    return make_doc(PRED_ENTITIES, PRED_RELATIONS, scores=[0.9, 0.8, 0.7, 0.6])


def arc_labels(markup):
    return re.findall(r'class="displacy-label"[^>]*>([^<]+)</textPath>', markup)


def test_render_draws_entities_and_relation_arcs(predicted):
    markup = render(predicted, jupyter=False, options={"scores": True})
    assert sorted(arc_labels(markup)) == ["Located_In 0.75", "OrgBased_In 0.75"]
    # the nested Loc "Oslo" is a node of its own beside "University of Oslo"
    assert ">University of Oslo</tspan>" in markup and ">Oslo</tspan>" in markup
    assert "Loc 0.80" in markup and "Org 0.90" in markup
    assert markup.count('class="displacy-arc"') == 2


def test_render_compares_with_gold(predicted, gold):
    markup = render([predicted], gold=[gold], jupyter=False)
    assert sorted(arc_labels(markup)) == [
        "Located_In (FP)",
        "Located_In (missed)",
        "OrgBased_In (TP)",
        "Work_For (missed)",
    ]
    for label in ("Org (TP)", "Loc (TP)", "Org (FP)", "Peop (missed)"):
        assert label in markup
    assert markup.count("spanjoint-tp") == 1 and markup.count("spanjoint-fp") == 1
    assert markup.count("spanjoint-missed") == 2


def test_render_symmetric_relation_matches_either_direction(predicted, gold):
    gold.user_data["spanjoint_symmetric_relations"] = ["Located_In"]
    markup = render(predicted, gold=gold, jupyter=False)
    assert "Located_In (TP)" in arc_labels(markup)
    assert "Located_In (missed)" not in arc_labels(markup)


def test_render_doc_without_relations_has_no_arcs():
    doc = make_doc([(0, 1, "Other")], [])
    markup = render(doc, jupyter=False)
    assert "displacy-arc" not in markup and "Other" in markup


def test_render_rejects_gold_of_other_docs(predicted):
    other = Doc(predicted.vocab, words=["Another", "sentence"])
    with pytest.raises(ValueError, match="different tokens"):
        render(predicted, gold=other, jupyter=False)
    with pytest.raises(ValueError, match="1 docs but 2 gold docs"):
        render(predicted, gold=[predicted, predicted], jupyter=False)


def test_page_in_headless_browser(predicted, gold, tmp_path):
    if find_chromium() is None:
        reason = "Chromium not found on PATH (install it with `apt-get install -y chromium`)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + "; CI must run the browser test")
        pytest.skip(reason)
    page = tmp_path / "page.html"
    page.write_text(render([predicted], gold=[gold], page=True, titles=["Oslo"], jupyter=False), encoding="utf8")
    dom = run_chromium(["--dump-dom", page.as_uri()])
    assert "<svg" in dom and "Oslo" in dom
    assert sorted(arc_labels(dom)) == [
        "Located_In (FP)",
        "Located_In (missed)",
        "OrgBased_In (TP)",
        "Work_For (missed)",
    ]
    assert len(re.findall(r'<path class="displacy-arc', dom)) == 4
    assert "TP: true positive" in dom
    png = screenshot(page, tmp_path / "page.png", width=900, height=700)
    data = png.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (900, 700)
    assert len(data) > 5000  # more than a blank page


def test_labels_and_texts_from_data_are_escaped():
    doc = Doc(spacy.blank("en").vocab, words=["<script>alert(1)</script>", "met", "Bob"])
    doc.spans["entities"] = [Span(doc, 0, 1, label="<img src=x onerror=alert(1)>"), Span(doc, 2, 3, label="Peop")]
    doc._.relations = [Relation((0, 1), (2, 3), "<b onmouseover=alert(1)>Met</b>", 1.0)]
    for markup in (render(doc, jupyter=False), render([doc], gold=[doc], page=True, jupyter=False, titles=["<i>t</i>"])):
        assert "<img" not in markup and "<script" not in markup and "<b " not in markup and "<i>" not in markup
        assert "&lt;img src=x onerror=alert(1)&gt;" in markup
        assert "&lt;script&gt;" in markup


def test_serve_binds_this_machine_only_by_default():
    import inspect

    from spacy_spanjoint import serve

    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
