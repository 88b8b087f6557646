"""Prepare a trained pipeline for `spacy package`.

A trained pipeline has no sentence segmenter: the training corpora come split
into sentences. Raw text needs one, because each sentence is its own
transformer window and relations never cross a window. `prepare_pipeline`
puts spaCy's rule-based `sentencizer` first, names and versions the pipeline
and lists this package among its requirements, so that the package built by
`spacy package` installs `spacy-spanjoint` and `spacy.load("en_spanjoint")`
works without importing anything.
"""
from pathlib import Path
from typing import Any, Dict, List, Union

import spacy
from spacy.cli.package import get_third_party_dependencies
from spacy.util import get_minor_version_range, split_requirement

from .. import __version__

PACKAGE_DISTRIBUTION = "spacy-spanjoint"
# Factories that set sentence boundaries; the sentencizer is added only without one.
SENTENCE_FACTORIES = ("sentencizer", "senter", "parser")


def prepare_pipeline(
    model_path: Union[str, Path],
    output_path: Union[str, Path],
    name: str = "spanjoint",
    version: str = "0.1.0",
    description: str = "",
) -> Dict[str, Any]:
    """Save a copy of a trained pipeline that is ready for `spacy package`.

    model_path (str / Path): The trained pipeline, e.g. `training/conll04/model-best`.
    output_path (str / Path): Where to save the copy; `spacy package` reads it.
    name (str): The pipeline name without the language prefix (`spanjoint`
        gives the package `en_spanjoint`).
    version (str): The pipeline version.
    description (str): The meta's description; a default one if empty.
    RETURNS (Dict[str, Any]): The meta saved with the copy.
    """
    nlp = spacy.load(model_path)
    factories = {nlp.get_pipe_meta(pipe).factory for pipe in nlp.pipe_names}
    if not factories.intersection(SENTENCE_FACTORIES):
        nlp.add_pipe("sentencizer", first=True)
    nlp.meta["name"] = name
    nlp.meta["version"] = version
    nlp.meta["description"] = description or (
        "Joint entity and relation extraction (spacy-spanjoint): entities in "
        "doc.spans['entities'], relations in doc._.relations."
    )
    nlp.meta["requirements"] = package_requirements(nlp)
    output_path = Path(output_path)
    output_path.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(output_path)
    return nlp.meta


def package_requirements(nlp: spacy.Language) -> List[str]:
    """The requirements of a packaged pipeline: those of its meta, those that
    `spacy package` finds in its config, and always `spacy-spanjoint`.

    spaCy maps the modules of the registered functions to their distributions,
    which finds `spacy-spanjoint` for a regular or editable install; it is
    added by hand if that lookup fails (e.g. when run from a source tree).

    nlp (Language): The loaded pipeline.
    RETURNS (List[str]): Requirement strings such as `spacy-spanjoint>=0.1.0,<0.2.0`.
    """
    requirements = list(nlp.meta.get("requirements", []))
    known = [split_requirement(req)[0] for req in requirements]
    requirements += get_third_party_dependencies(nlp.config, exclude=known)
    if PACKAGE_DISTRIBUTION not in {split_requirement(req)[0] for req in requirements}:
        requirements.append(PACKAGE_DISTRIBUTION + get_minor_version_range(__version__))
    return requirements
