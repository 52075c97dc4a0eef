"""A corpus of software documentation whose licences allow commercial use, for training.

The release model learned from SciFact and MS MARCO text (non-commercial terms). The permissive
variant (`scripts/build_default_model.py --variant permissive`) learns only from text that allows
commercial use; this module gathers the documentation half of it from the Python environment it
runs in, the kind of text a person's folder holds:

- each installed distribution whose licence names only permissive licences (`permissive_licence`:
  MIT, BSD, Apache-2.0, ISC, PSF, ... by SPDX expression, else by the `License` field or the trove
  classifiers; copyleft, MPL and unknown licences are left out): its README (the long description in
  its metadata) and the docstrings of its public modules, classes and functions, read with `ast`
  (nothing is imported);
- the Python standard library (PSF-2.0): the language reference topics that `help()` shows
  (`pydoc_data.topics`) and the docstrings of its modules.

Each source file becomes a text file under OUTPUT/files/<distribution>/, then passages exactly as
`search` cuts a folder (`retrieval.files.read_folder`, its default `PassageSettings`), at most
`max_passages_per_distribution` per distribution (a seeded sample) so that numpy's docstrings do not
drown the READMEs. OUTPUT/corpus.jsonl is a BEIR corpus; OUTPUT/provenance.json records, for every
distribution used, its version, licence and passages, and every distribution left out with why.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import json
import random
import re
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from ..retrieval.beir import Document, write_corpus
from ..retrieval.files import read_folder

# SPDX identifiers that allow commercial use without share-alike or file-level copyleft
PERMISSIVE_SPDX = frozenset(
    {
        "0BSD",
        "Apache-2.0",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "BSL-1.0",
        "CC0-1.0",
        "CNRI-Python",
        "ISC",
        "MIT",
        "MIT-CMU",
        "PSF-2.0",
        "Python-2.0",
        "Unlicense",
        "Zlib",
    }
)
# a `License` field or trove classifier that names one of them, in the words packages use
PERMISSIVE_NAMES = {
    "mit": "MIT",
    "mit license": "MIT",
    "bsd": "BSD-3-Clause",
    "bsd license": "BSD-3-Clause",
    "3-clause bsd license": "BSD-3-Clause",
    "bsd-2-clause": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause",
    "apache 2.0": "Apache-2.0",
    "apache-2.0": "Apache-2.0",
    "apache software license": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache 2.0 license": "Apache-2.0",
    "isc license (iscl)": "ISC",
    "isc license": "ISC",
    "python software foundation license": "PSF-2.0",
    "psf-2.0": "PSF-2.0",
    "psfl": "PSF-2.0",
}
STDLIB = "python-stdlib"
SKIPPED_PATH_PARTS = frozenset({"tests", "test", "testing", "_vendor", "vendor", "idlelib", "turtledemo"})
MAX_SOURCE_BYTES = 2_000_000  # a larger .py file is generated code, not documentation


@dataclass(frozen=True)
class DocsCorpusSettings:
    max_passages_per_distribution: int = 300
    min_docstring_words: int = 25  # shorter docstrings ("Return self.") say nothing to search for
    exclude: tuple[str, ...] = ("ettin-rerank",)  # our own docs quote the evaluation sets' figures
    packages: tuple[str, ...] | None = None  # only these distributions (None: every one installed)
    stdlib: bool = True  # the standard library's reference topics and docstrings
    seed: int = 12


@dataclass(frozen=True)
class DistributionUsed:
    name: str
    version: str
    licence: str  # SPDX expression as far as the metadata gives it
    files: int
    passages: int


def permissive_licence(meta: metadata.PackageMetadata) -> str | None:
    """The distribution's licence as SPDX ids when every licence it names allows commercial use
    without copyleft; None when any is copyleft, MPL or unknown (a distribution is left out when in
    doubt). An SPDX `License-Expression` decides alone; else the `License` field when it is a short
    name; else the trove classifiers."""
    expression = _field(meta, "License-Expression").strip()
    if expression:
        return expression if _spdx_permissive(expression) else None
    field = _field(meta, "License").strip().rsplit("::", 1)[-1].strip()
    if field and "\n" not in field and len(field) <= 40:
        if _spdx_permissive(field):
            return field
        whole = PERMISSIVE_NAMES.get(field.lower())
        names = [whole] if whole else re.split(r",|\s+or\s+|\s+and\s+", field, flags=re.IGNORECASE)
        spdx = [PERMISSIVE_NAMES.get(name.strip().lower(), name.strip()) for name in names if name.strip()]
        return " AND ".join(sorted(set(spdx))) if all(s in PERMISSIVE_SPDX for s in spdx) else None
    classifiers = [
        c.rsplit("::", 1)[-1].strip().lower()
        for c in meta.get_all("Classifier") or []
        if c.startswith("License ::")
    ]
    spdx = [PERMISSIVE_NAMES.get(name) for name in classifiers]
    if not spdx or not all(spdx):
        return None
    return " AND ".join(sorted({s for s in spdx if s}))


def _spdx_permissive(expression: str) -> bool:
    """Every alternative of an OR may be chosen, so one permissive alternative is enough; every
    term of an AND applies. Parentheses group; `WITH LLVM-exception` only widens a licence."""
    expression = re.sub(r"\s+WITH\s+[\w.-]+", "", expression)
    return _any_permissive(_split_top(expression, "OR"))


def _any_permissive(alternatives: list[str]) -> bool:
    return any(all(_term_permissive(term) for term in _split_top(alt, "AND")) for alt in alternatives)


def _term_permissive(term: str) -> bool:
    term = term.strip()
    if term.startswith("(") and term.endswith(")"):
        return _any_permissive(_split_top(term[1:-1], "OR"))
    return term in PERMISSIVE_SPDX


def _split_top(expression: str, operator: str) -> list[str]:
    """`expression` split on ` OPERATOR ` outside parentheses."""
    parts, depth, start = [], 0, 0
    tokens = re.finditer(rf"\(|\)|\s{operator}\s", expression)
    for token in tokens:
        if token.group() == "(":
            depth += 1
        elif token.group() == ")":
            depth -= 1
        elif depth == 0:
            parts.append(expression[start : token.start()])
            start = token.end()
    parts.append(expression[start:])
    return [part.strip() for part in parts if part.strip()]


def docstring_text(source: str, module: str, min_words: int) -> str:
    """The docstrings of a module's public objects (module, classes, functions, methods), each under
    its qualified name, as one text; "" when none has `min_words` words or the source does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ""
    sections = []

    def visit(node: ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> None:
        doc = ast.get_docstring(node, clean=True)
        if doc and len(doc.split()) >= min_words:
            sections.append(f"{name}\n\n{doc}")
        for child in ast.iter_child_nodes(node):
            if isinstance(child, _DEFINITIONS) and not child.name.startswith("_"):
                visit(child, f"{name}.{child.name}")

    visit(tree, module)
    return "\n\n".join(sections)


_DEFINITIONS = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def distribution_texts(dist: metadata.Distribution, min_words: int) -> Iterator[tuple[str, str]]:
    """(file name, text) of a distribution's README and of each public module's docstrings."""
    readme = str(dist.metadata.json.get("description") or "")
    if len(readme.split()) >= min_words:
        markdown = "markdown" in _field(dist.metadata, "Description-Content-Type")
        yield ("README.md" if markdown else "README.txt"), readme
    for file in dist.files or []:
        if file.suffix == ".py" and _public_module(file.parts):
            yield from _module_text(Path(str(dist.locate_file(file))), str(file), min_words)


def stdlib_texts(min_words: int) -> Iterator[tuple[str, str]]:
    """The language reference topics `help()` shows, and the standard library's module docstrings."""
    from pydoc_data.topics import topics

    for name, text in sorted(topics.items()):
        if len(text.split()) >= min_words:
            yield f"reference/{name}.txt", text
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if "site-packages" not in relative.parts and _public_module(relative.parts):
            yield from _module_text(path, str(relative), min_words)


def _public_module(parts: tuple[str, ...]) -> bool:
    """A module path (its parts) outside tests and vendored code, with no private part."""
    if SKIPPED_PATH_PARTS.intersection(parts):
        return False
    return not any(part.startswith("_") and part != "__init__.py" for part in parts)


def _module_text(path: Path, relative: str, min_words: int) -> Iterator[tuple[str, str]]:
    try:
        if path.stat().st_size > MAX_SOURCE_BYTES:
            return
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return
    module = relative.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    text = docstring_text(source, module, min_words)
    if text:
        yield relative.removesuffix(".py") + ".txt", text


def write_docs_corpus(output_dir: str | Path, settings: DocsCorpusSettings | None = None) -> Path:
    """Write OUTPUT/{files/, corpus.jsonl, provenance.json} (see the module docstring); an existing
    complete output is kept. Returns OUTPUT."""
    settings = settings or DocsCorpusSettings()
    output = Path(output_dir)
    if (output / "provenance.json").is_file():
        return output
    sources: dict[str, tuple[str, str, Iterator[tuple[str, str]]]] = {}
    left_out: dict[str, str] = {}
    for dist in sorted(metadata.distributions(), key=lambda d: d.metadata["Name"].lower()):
        name = dist.metadata["Name"]
        if name in sources or (settings.packages is not None and name not in settings.packages):
            continue  # a name installed twice (say, editable and built) counts once
        if name in settings.exclude:
            left_out[name] = "excluded"
            continue
        licence = permissive_licence(dist.metadata)
        if licence is None:
            left_out[name] = f"licence not permissive or unknown: {_licence_words(dist.metadata)}"
            continue
        sources[name] = (dist.version, licence, distribution_texts(dist, settings.min_docstring_words))
    if settings.stdlib:
        version = ".".join(map(str, sys.version_info[:3]))
        sources[STDLIB] = (version, "PSF-2.0", stdlib_texts(settings.min_docstring_words))

    corpus: dict[str, Document] = {}
    used = []
    for name, (version, licence, texts) in sources.items():
        folder = output / "files" / name
        files = 0
        for file_name, text in texts:
            path = folder / file_name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            files += 1
        if not files:
            left_out[name] = "no README or docstring long enough"
            continue
        passages, _ = read_folder(folder)
        kept = sorted(passages)
        if len(kept) > settings.max_passages_per_distribution:
            kept = sorted(
                random.Random(f"{settings.seed}:{name}").sample(kept, settings.max_passages_per_distribution)
            )
        for doc_id in kept:
            document = passages[doc_id]
            corpus[f"{name}/{doc_id}"] = Document(f"{name}/{doc_id}", document.title, document.text)
        used.append(DistributionUsed(name, version, licence, files, len(kept)))
    write_corpus(corpus, output / "corpus.jsonl")
    provenance = {
        "what": "passages of the documentation shipped in the Python environment that built this corpus",
        "settings": asdict(settings),
        "passages": len(corpus),
        "distributions": [asdict(d) for d in used],
        "left_out": dict(sorted(left_out.items())),
    }
    (output / "provenance.json").write_text(json.dumps(provenance, indent=1) + "\n", encoding="utf-8")
    return output


def _field(meta: metadata.PackageMetadata, key: str) -> str:
    """A metadata field's first value, "" when absent."""
    return (meta.get_all(key) or [""])[0]


def _licence_words(meta: metadata.PackageMetadata) -> str:
    words = _field(meta, "License-Expression") or (_field(meta, "License") or "").split("\n")[0][:60]
    classifiers = [
        c.rsplit("::", 1)[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")
    ]
    return words or "; ".join(classifiers) or "none given"
