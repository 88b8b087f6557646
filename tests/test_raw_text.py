"""`nlp(text)` on any string: empty, odd characters, windows over the encoder's
word-piece limit, very long documents, several processes; and non-text input."""
import pytest
from spacy.tokens import Doc
from spacy.training import Example

from spacy_spanjoint.encoder.transformer import fit_to_encoder, max_window_pieces

from test_spanjoint_component import make_examples, make_nlp

URL = "https://example.com/" + "/".join(f"seg{i}x{i * 7}q" for i in range(30))


@pytest.fixture(scope="module")
def nlp(tiny_encoder_path):
    """A tiny initialized pipeline with a sentencizer in front; at most 5
    entities per window keep the random model's pairs few."""
    nlp = make_nlp(tiny_encoder_path, max_entities_per_window=5)
    nlp.add_pipe("sentencizer", first=True)
    examples = make_examples(nlp.vocab)
    nlp.initialize(lambda: [Example(nlp.make_doc(eg.reference.text), eg.reference) for eg in examples])
    return nlp


def check_doc(doc: Doc) -> None:
    """Entities lie in one sentence, relations join entities of one sentence."""
    group = doc.spans["entities"]
    assert len(group.attrs["scores"]) == len(group)
    sentence_of = {t.i: n for n, sent in enumerate(doc.sents) for t in sent} if len(doc) else {}
    for span in group:
        assert sentence_of[span.start] == sentence_of[span.end - 1]
    entities = {(s.start, s.end) for s in group}
    for relation in doc._.relations:
        assert relation.head in entities and relation.tail in entities
        assert sentence_of[relation.head[0]] == sentence_of[relation.tail[0]]


ODD_TEXTS = {
    "empty": "",
    "whitespace only": "  \n\t \u3000 ",
    "double spaces and newlines": "John  Smith lives in\n\nNew York .\n\n\nMary works for Acme .",
    "cjk": "東京は日本の首都です。 北京是中国的首都。 서울은 한국의 수도입니다.",
    "emoji": "John 😀 lives in Paris 🇫🇷 . 👩‍👩‍👧 works for Acme 🚀🚀🚀 .",
    "right to left": "محمد يعيش في القاهرة . John lives in Paris . שלום עולם .",
    "combining characters": "Jose\u0301 lives in Sa\u0303o Paulo . Z\u0335\u0321a\u0337l\u0336g\u0334o\u0338 .",
    "control characters": "John\x00 lives \x07 in \x1b[31m Paris\u200b . \ufeff\u202eabc\u202c \x7f .",
    "only control characters": "\x00\x01\x02 \x03",
}


@pytest.mark.parametrize("name", list(ODD_TEXTS))
def test_odd_strings(nlp, name):
    doc = nlp(ODD_TEXTS[name])
    assert doc.text == ODD_TEXTS[name]
    check_doc(doc)


def test_windows_are_bounded_by_word_pieces(nlp):
    """128 tokens of URLs, long numbers or CJK runs exceed 512 word pieces:
    the windows are cut again so that no token loses its pieces."""
    transformer = nlp.get_pipe("transformer").model
    limit = max_window_pieces(transformer)
    texts = [" ".join([URL] * 40), " ".join(["1234567890" * 6] * 120), " ".join(["東京大阪名古屋札幌福岡"] * 120)]
    for text in texts:
        doc = nlp.make_doc(text)
        windows, wordpieces, align = fit_to_encoder(transformer, transformer.attrs["get_spans"]([doc]))
        assert len(windows[0]) > 1
        assert max(wordpieces.lengths) <= limit
        assert align.lengths.min() > 0  # no token was truncated away
        assert [(w.start, w.end) for w in windows[0]] == [
            (a, b) for a, b in zip([0] + [w.end for w in windows[0][:-1]], [w.end for w in windows[0]])
        ]
        check_doc(nlp(text))


def test_single_token_over_the_limit_keeps_its_first_pieces(nlp):
    doc = nlp(URL * 30 + " and " + "7" * 3000)
    assert len(doc) == 3
    check_doc(doc)


def test_long_sentence_and_long_document(nlp):
    """A 2,000-token sentence, and a 50,000-word document."""
    sentence = nlp(" ".join(["John lives in Paris and"] * 400))
    assert len(sentence) == 2000 and len(list(sentence.sents)) == 1
    check_doc(sentence)
    text = " ".join(["Mary works for Acme Corp in Paris ."] * 6250)
    doc = nlp(text)
    assert len(doc) == 50000
    check_doc(doc)
    # the long document predicts what its sentences predict on their own
    alone = nlp("Mary works for Acme Corp in Paris .")
    first = [(s.start, s.end, s.label_) for s in doc.spans["entities"] if s.end <= 8]
    assert first == [(s.start, s.end, s.label_) for s in alone.spans["entities"]]


def test_non_text_input_is_rejected(nlp):
    # spaCy rejects anything but str, Doc and bytes before any component runs
    for bad in (None, 5, ["a", "list"], {"text": "x"}):
        with pytest.raises(ValueError, match="E1041"):
            nlp(bad)
    # called on its own, the component names what it got
    with pytest.raises(TypeError, match="is a str, not a Doc"):
        nlp.get_pipe("spanjoint").predict(["John lives in Paris ."])


def test_pipe_with_two_processes_equals_one(nlp):
    texts = [ODD_TEXTS["double spaces and newlines"], "", ODD_TEXTS["emoji"], "Anna married Tom . " * 30,
             " ".join([URL] * 20), ODD_TEXTS["cjk"]]

    def view(doc):
        entities = [(s.start, s.end, s.label_, round(score, 5))
                    for s, score in zip(doc.spans["entities"], doc.spans["entities"].attrs["scores"])]
        relations = [(r.head, r.tail, r.label, round(r.score, 5)) for r in doc._.relations]
        return entities, relations

    one = [view(doc) for doc in nlp.pipe(texts, batch_size=2)]
    two = [view(doc) for doc in nlp.pipe(texts, batch_size=2, n_process=2)]
    assert two == one
