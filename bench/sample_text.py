"""Sentences of the bundled sample articles, the raw material the benches build corpora from."""

from __future__ import annotations

from pathlib import Path

from giellm_batch.input.decoding import decode_livedoor_file
from giellm_batch.text.segmentation import Segmenter


def livedoor_sentences(folder: str | Path) -> list[str]:
    """Every sentence of every Livedoor article under `folder`."""
    segmenter = Segmenter()
    out: list[str] = []
    for path in sorted(Path(folder).rglob("*.txt")):
        if path.name != "LICENSE.txt":
            out.extend(s.text for s in segmenter.split(decode_livedoor_file(str(path), path.read_bytes())["body"]))
    return out
