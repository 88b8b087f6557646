"""`doc._.relations`: plain records that survive serialization and multiprocessing."""
import pickle

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from spacy.vocab import Vocab

from spacy_spanjoint import Relation, concat_docs, span_as_doc, triples
from spacy_spanjoint.pipeline.relations import RELATIONS_KEY

WORDS = ["Ann", "Smith", "lives", "in", "Oslo", "."]


def make_doc(vocab=None) -> Doc:
    doc = Doc(vocab or Vocab(), words=WORDS)
    doc._.relations = [
        Relation((0, 2), (4, 5), "Lives_In", 0.75),
        Relation((4, 5), (0, 2), "Hosts", 0.5),
    ]
    return doc


EXPECTED = [Relation((0, 2), (4, 5), "Lives_In", 0.75), Relation((4, 5), (0, 2), "Hosts", 0.5)]


def assert_same_relations(doc: Doc) -> None:
    relations = doc._.relations
    assert relations == EXPECTED
    assert all(isinstance(r, Relation) for r in relations)
    assert all(isinstance(r.head, tuple) and isinstance(r.tail, tuple) for r in relations)


def test_relations_default_empty_and_appendable():
    doc = Doc(Vocab(), words=WORDS)
    assert doc._.relations == []
    doc._.relations.append(Relation((0, 1), (4, 5), "Lives_In"))
    assert doc._.relations == [Relation((0, 1), (4, 5), "Lives_In", 1.0)]


def test_setter_accepts_tuples_and_dicts():
    doc = Doc(Vocab(), words=WORDS)
    doc._.relations = [((0, 2), [4, 5], "Lives_In"), {"head": [4, 5], "tail": (0, 2), "label": "Hosts", "score": 0.5}]
    assert doc._.relations == [Relation((0, 2), (4, 5), "Lives_In", 1.0), Relation((4, 5), (0, 2), "Hosts", 0.5)]


def test_doc_to_bytes_round_trip():
    doc = make_doc()
    restored = Doc(Vocab()).from_bytes(doc.to_bytes())
    assert_same_relations(restored)


def test_docbin_round_trip():
    vocab = Vocab()
    doc_bin = DocBin(store_user_data=True, docs=[make_doc(vocab), Doc(vocab, words=["x"])])
    restored = list(DocBin().from_bytes(doc_bin.to_bytes()).get_docs(Vocab()))
    assert_same_relations(restored[0])
    assert restored[1]._.relations == []


def test_docbin_without_user_data_drops_relations():
    doc_bin = DocBin(store_user_data=False, docs=[make_doc()])
    (restored,) = DocBin().from_bytes(doc_bin.to_bytes()).get_docs(Vocab())
    assert restored._.relations == []


def test_pickle_round_trip():
    restored = pickle.loads(pickle.dumps(make_doc()))
    assert_same_relations(restored)


@Language.component("test_add_relations")
def add_relations(doc: Doc) -> Doc:
    """Relates every token to the next one, so each doc's output differs."""
    doc._.relations = [
        Relation((i, i + 1), (i + 1, i + 2), f"next_{doc[i].text}", 1.0 / (i + 1)) for i in range(len(doc) - 1)
    ]
    return doc


def test_nlp_pipe_multiprocess_keeps_relations():
    nlp = spacy.blank("en")
    nlp.add_pipe("test_add_relations")
    texts = ["Ann lives in Oslo .", "Bob works for Acme in Paris", "Hi", "", "One two three"] * 2
    single = [doc._.relations for doc in nlp.pipe(texts)]
    multi = [doc._.relations for doc in nlp.pipe(texts, n_process=2, batch_size=2)]
    assert multi == single
    assert single[0][0] == Relation((0, 1), (1, 2), "next_Ann", 1.0)
    assert all(isinstance(r, Relation) and isinstance(r.head, tuple) for doc in multi for r in doc)


@pytest.mark.parametrize(
    "record,message",
    [
        (((0, 2), (4, 7), "Lives_In"), r"doc\._\.relations\[1\]\.tail: offsets \(4, 7\)"),
        (((-1, 2), (4, 5), "Lives_In"), r"doc\._\.relations\[1\]\.head: offsets \(-1, 2\)"),
        (((2, 2), (4, 5), "Lives_In"), r"doc\._\.relations\[1\]\.head: offsets \(2, 2\)"),
        (((3, 2), (4, 5), "Lives_In"), r"doc\._\.relations\[1\]\.head"),
        (((0, 2), (4, 5), ""), r"doc\._\.relations\[1\]\.label"),
        (((0, 2), (4, 5), 3), r"doc\._\.relations\[1\]\.label"),
        (((0, 2), (4, 5), "Lives_In", "high"), r"doc\._\.relations\[1\]\.score"),
        (((0, 2, 3), (4, 5), "Lives_In"), r"doc\._\.relations\[1\]\.head: expected token offsets"),
        (((True, 2), (4, 5), "Lives_In"), r"doc\._\.relations\[1\]\.head"),
        (((0.0, 2), (4, 5), "Lives_In"), r"doc\._\.relations\[1\]\.head"),
        ("Lives_In", r"doc\._\.relations\[1\]: expected a Relation"),
        ({"head": (0, 2), "label": "Lives_In"}, r"doc\._\.relations\[1\]: missing key\(s\) \['tail'\]"),
    ],
)
def test_setter_validation_names_the_record(record, message):
    doc = Doc(Vocab(), words=WORDS)
    with pytest.raises(ValueError, match=message):
        doc._.relations = [Relation((0, 2), (4, 5), "Lives_In"), record]
    assert doc._.relations == []  # nothing half-written


def test_bad_record_from_user_data_is_reported_by_the_getter():
    doc = Doc(Vocab(), words=WORDS)
    doc.user_data[RELATIONS_KEY] = [[[0, 2], [4, 5], "Lives_In", 1.0], [[0, 2], [4, 9], "Lives_In", 1.0]]
    with pytest.raises(ValueError, match=r"relations\[1\]\.tail"):
        doc._.relations


def test_triples():
    doc = make_doc()
    result = list(triples(doc))
    assert len(result) == 2
    head, label, tail, score = result[0]
    assert isinstance(head, Span) and isinstance(tail, Span)
    assert (head.text, label, tail.text, score) == ("Ann Smith", "Lives_In", "Oslo", 0.75)
    assert (head.start, head.end, tail.start, tail.end) == (0, 2, 4, 5)
    assert [(h.text, l, t.text) for h, l, t, _ in result[1:]] == [("Oslo", "Hosts", "Ann Smith")]
    assert list(triples(Doc(Vocab(), words=["x"]))) == []


def triple_texts(doc):
    return [(head.text, label, tail.text) for head, label, tail, _ in triples(doc)]


def test_relations_follow_a_retokenization():
    doc = make_doc()
    with doc.retokenize() as retokenizer:
        retokenizer.merge(doc[0:2])
    assert triple_texts(doc) == [("Ann Smith", "Lives_In", "Oslo"), ("Oslo", "Hosts", "Ann Smith")]
    assert doc._.relations[0] == Relation((0, 1), (3, 4), "Lives_In", 0.75)
    split = Doc(Vocab(), words=["NewYork", "hosts", "Ann"])
    split._.relations = [Relation((0, 1), (2, 3), "Hosts")]
    with split.retokenize() as retokenizer:
        retokenizer.split(split[0], ["New", "York"], heads=[(split[0], 1), split[1]])
    assert triple_texts(split) == [("NewYork", "Hosts", "Ann")]
    assert split._.relations == [Relation((0, 2), (3, 4), "Hosts")]


def test_relations_follow_merge_entities():
    from spacy.pipeline.functions import merge_entities

    doc = make_doc()
    doc.ents = [Span(doc, 0, 2, label="Peop"), Span(doc, 4, 5, label="Loc")]
    doc = merge_entities(doc)
    assert triple_texts(doc) == [("Ann Smith", "Lives_In", "Oslo"), ("Oslo", "Hosts", "Ann Smith")]


def test_merge_across_an_entity_edge_is_an_error():
    doc = make_doc()
    with doc.retokenize() as retokenizer:
        retokenizer.merge(doc[1:3])  # "Smith lives": the head "Ann Smith" no longer ends on a token
    with pytest.raises(ValueError, match=r"relations\[0\]\.head: the entity 'Ann Smith' .* retokenized"):
        doc._.relations
    with pytest.raises(ValueError):
        list(triples(doc))


def test_relations_copied_to_another_text_are_an_error():
    doc = make_doc()
    other = Doc(doc.vocab, words=["Bob", "Jones", "works", "in", "Rome", "."], user_data=dict(doc.user_data))
    with pytest.raises(ValueError, match="another text"):
        other._.relations


def test_relations_survive_docbin_after_a_retokenization():
    doc = make_doc()
    with doc.retokenize() as retokenizer:
        retokenizer.merge(doc[0:2])
    (restored,) = DocBin(store_user_data=True, docs=[doc]).get_docs(Vocab())
    assert triple_texts(restored) == [("Ann Smith", "Lives_In", "Oslo"), ("Oslo", "Hosts", "Ann Smith")]


def test_concat_docs_and_span_as_doc_keep_relations():
    first = make_doc()
    joined = concat_docs([first, make_doc(first.vocab)])
    assert joined._.relations[2:] == [Relation((6, 8), (10, 11), "Lives_In", 0.75), Relation((10, 11), (6, 8), "Hosts", 0.5)]
    assert triple_texts(joined)[2] == ("Ann Smith", "Lives_In", "Oslo")
    part = span_as_doc(make_doc()[0:5])
    assert part._.relations == EXPECTED
    assert span_as_doc(make_doc()[1:5])._.relations == []  # the head "Ann Smith" is cut


def test_triples_refuse_a_record_outside_the_doc():
    doc = make_doc()
    doc._.relations.append(Relation((4, 9), (0, 1), "Lives_In"))
    with pytest.raises(ValueError, match=r"relations\[2\]\.head: offsets \(4, 9\)"):
        list(triples(doc))
