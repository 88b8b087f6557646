"""Run the `spanjoint` command line: `python -m spacy_spanjoint --help`."""

from .cli import app

if __name__ == "__main__":
    app(prog_name="spanjoint")
