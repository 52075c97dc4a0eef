import email
import json

import pytest

from ettin_rerank.retrieval.beir import load_corpus
from ettin_rerank.training.docs_corpus import (
    DocsCorpusSettings,
    docstring_text,
    permissive_licence,
    write_docs_corpus,
)


def metadata_of(**fields):
    """Package metadata as a distribution's METADATA file holds it (keys with '-' as '_')."""
    lines = []
    for key, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"{key.replace('_', '-')}: {item}")
    return email.message_from_string("\n".join(lines) + "\n\n")


@pytest.mark.parametrize(
    ("expression", "permissive"),
    [
        ("MIT", True),
        ("Apache-2.0 AND Apache-2.0 WITH LLVM-exception AND BSD-3-Clause", True),
        ("MIT OR GPL-3.0-only", True),  # the user may choose MIT
        ("MIT AND GPL-3.0-only", False),
        ("MPL-2.0 AND (Apache-2.0 OR MIT)", False),
        ("(GPL-2.0-only OR MIT) AND BSD-3-Clause", True),
        ("LicenseRef-Proprietary", False),
    ],
)
def test_an_spdx_expression_is_permissive_only_when_every_licence_that_applies_is(expression, permissive):
    assert (permissive_licence(metadata_of(License_Expression=expression)) is not None) is permissive


def test_licence_fields_and_classifiers_are_read_when_there_is_no_expression():
    assert permissive_licence(metadata_of(License="Apache License, Version 2.0")) == "Apache-2.0"
    assert permissive_licence(metadata_of(License="MIT OR Apache-2.0")) == "MIT OR Apache-2.0"
    assert permissive_licence(metadata_of(License="MIT, BSD")) == "BSD-3-Clause AND MIT"
    classifiers = ["License :: OSI Approved :: BSD License", "License :: OSI Approved :: MIT License"]
    assert permissive_licence(metadata_of(Classifier=classifiers)) == "BSD-3-Clause AND MIT"
    # in doubt, left out: copyleft, MPL, a licence text instead of a name, nothing at all
    assert permissive_licence(metadata_of(License="GPLv3")) is None
    assert (
        permissive_licence(metadata_of(Classifier=["License :: OSI Approved :: Mozilla Public License 2.0"]))
        is None
    )
    mixed = [
        "License :: OSI Approved :: MIT License",
        "License :: OSI Approved :: GNU General Public License v3",
    ]
    assert permissive_licence(metadata_of(Classifier=mixed)) is None
    assert permissive_licence(metadata_of(Name="x")) is None


def test_docstring_text_keeps_public_documented_objects_under_their_names():
    long_doc = " ".join(["word"] * 30)
    source = f'''
"""{long_doc} module."""

def public(x):
    """{long_doc} public."""

def _private(x):
    """{long_doc} private."""

class Widget:
    """Too short."""

    def render(self):
        """{long_doc} render."""
'''
    text = docstring_text(source, "pkg.mod", min_words=25)
    assert text.startswith("pkg.mod\n\n")
    assert "pkg.mod.public\n\n" in text and "pkg.mod.Widget.render\n\n" in text
    assert "private" not in text and "Too short" not in text
    assert docstring_text("def broken(:\n", "pkg", 1) == ""


def test_write_docs_corpus_records_what_it_used_and_what_it_left_out(tmp_path):
    # click is BSD-3-Clause, certifi MPL-2.0: both are dependencies of this project's environment
    settings = DocsCorpusSettings(
        packages=("click", "certifi"), stdlib=False, max_passages_per_distribution=20
    )
    output = write_docs_corpus(tmp_path / "docs", settings)
    provenance = json.loads((output / "provenance.json").read_text())
    (used,) = provenance["distributions"]
    assert used["name"] == "click" and used["licence"] == "BSD-3-Clause"
    assert provenance["left_out"] == {"certifi": "licence not permissive or unknown: MPL-2.0"}
    corpus = load_corpus(output / "corpus.jsonl")
    assert len(corpus) == used["passages"] == 20 == provenance["passages"]
    assert all(doc_id.startswith("click/") for doc_id in corpus)
    assert any("click.core" in document.text for document in corpus.values())  # docstrings, named
    assert all(0 < len(document.text.split()) <= 120 for document in corpus.values())  # search's passages
    # a complete output is kept as it is
    (output / "corpus.jsonl").write_text("")
    assert write_docs_corpus(output, settings) == output and (output / "corpus.jsonl").read_text() == ""
