"""The workarounds of `spacy_spanjoint.compat` run on the releases they were written for."""
import pytest

from spacy_spanjoint import compat


def test_installed_releases_are_covered():
    assert compat.uncovered_versions() == {}
    compat.check_covered_versions()


def test_an_uncovered_release_is_named(monkeypatch):
    monkeypatch.setattr(compat, "version", lambda name: "9.0.0" if name == "thinc" else {
        "spacy": "3.8.1", "spacy-transformers": "1.4.0"}[name])
    with pytest.raises(RuntimeError, match=r"thinc 9\.0\.0 \(covered: 8\.3\.x\)"):
        compat.check_covered_versions()


def test_swap_class_refuses_a_class_that_is_not_a_subclass():
    class Shim:
        pass

    class Other:
        pass

    shim = Shim()
    with pytest.raises(TypeError, match="not a subclass"):
        compat.swap_class(shim, Other)
    assert type(shim) is Shim
