"""Builds the spaCy pipeline the assistant uses, from code, with no downloaded weights.

No official English model can be installed here, so the pipeline is spaCy's blank English
tokenizer plus the lookup lemmatizer whose tables ship in the `spacy-lookups-data` package.
Rasa's SpacyNLP loads it from disk (config.yml points at SPACY_MODEL_DIR), so `make train`
saves it there first.
"""
import sys
from pathlib import Path

import spacy
from spacy.language import Language

SPACY_MODEL_DIR = Path(__file__).resolve().parent.parent / ".cache" / "spacy-en-lookup"


def build() -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()  # loads the lookup table from spacy-lookups-data, offline
    return nlp


def save(path: Path = SPACY_MODEL_DIR) -> Path:
    """Writes the pipeline to `path` unless it is already there."""
    if not (path / "config.cfg").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        build().to_disk(path)
    return path


if __name__ == "__main__":
    print(save(Path(sys.argv[1]) if len(sys.argv) > 1 else SPACY_MODEL_DIR))
