"""`ettin-rerank search` on folders with a trap (issue 21): one long file answers the question in one
sentence among unrelated text, and short notes share the question's words without answering it.

BM25 alone (`--no-rerank`) ranks the answering file first in every folder here (the first test
records it). The model bundled before stage four reranked short notes above it unless the answer
opened the file: its teacher scored a whole text by one bi-encoder cosine, so the topic of the text
around an answer drowned the answer. Stage four (the windowed teacher, hard negatives from the same
documents; the model card) ranks the report first in each. Scores in the comments: before stage four
(commit 1af9027), stage four's answer groups alone (commit 0e72736) and the bundled model (the
average of that run and one with stage two replayed), exact fp32. The reranked tests pin `--dtype
float32`, the mode these scores are read in: `auto` computes in bf16 on some CPUs, and the replayed
run alone ranked the ferry report first by a hair (2.60 against 2.58; 2.58 against 2.575 in bf16).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from ettin_rerank.cli import main
from ettin_rerank.models import bundled_model_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")

UNRELATED = [
    "The board met four times during the year and approved the new travel policy.",
    "Revenue from the consulting division grew by eight percent compared with last year.",
    "Two new offices opened, one in the harbour district and one near the central station.",
    "Staff turnover fell after the introduction of flexible working hours in the spring.",
    "The audit committee reviewed the pension fund and found no material weaknesses.",
    "Marketing spent most of its budget on the autumn trade fair and the new website.",
    "The cafeteria contract was renewed for three years with a local catering firm.",
    "Training hours per employee rose, mostly through online courses on data protection.",
    "The company car fleet was partly replaced by electric vehicles and shared bicycles.",
    "A volunteer day brought forty employees to the riverside clean-up in September.",
]


@dataclass(frozen=True)
class Trap:
    """A folder: `report.txt` with `answer` after `sentences_before` unrelated sentences (and more after
    it when `sentences_after`), and one-line notes about the same subject that do not answer `query`."""

    query: str
    answer: str
    notes: tuple[str, ...]
    sentences_before: int
    sentences_after: int = 0

    def write(self, root: Path) -> Path:
        root.mkdir()
        before = [UNRELATED[i % len(UNRELATED)] for i in range(self.sentences_before)]
        after = [UNRELATED[(i + 3) % len(UNRELATED)] for i in range(self.sentences_after)]
        (root / "report.txt").write_text("Annual report.\n" + " ".join([*before, self.answer, *after]) + "\n")
        for number, note in enumerate(self.notes, start=1):
            (root / f"note-{number}.txt").write_text(note + "\n")
        return root


PUMP_ANSWER = "The Kestrel pump's filter must be replaced every 400 operating hours."
PUMP_NOTES = (
    "The Kestrel pump is serviced by the facilities team on the second floor.",
    "Kestrel pump: replace the seals whenever the housing leaks.",
    "The Kestrel pump shows its operating hours on the front display.",
)

# Folders the model bundled before stage four failed: it ranked a note above the report.
TRAPS = {
    # The folder: the answer is the report's last sentence, 40 sentences in. BM25: report
    # first (1.81, notes 1.00-1.01); reranked before stage four: fourth (0.75, against 1.20 for the
    # note on hardness); stage four alone: first (4.08, notes 1.54-1.65); bundled: first (4.08, notes
    # 1.49-1.70).
    "zorblax-late": Trap(
        query="at what temperature does the zorblax alloy melt?",
        answer="The zorblax alloy melts at exactly 1,234 degrees Celsius.",
        notes=(
            "Zorblax alloy was named after the mining town where its ore was found.",
            "The zorblax alloy is twice as hard as steel and never rusts.",
            "Zorblax alloy conducts heat poorly, which makes it useful for oven handles.",
        ),
        sentences_before=40,
    ),
    # The answer is the report's third sentence (its first passage); the notes share "kestrel" and
    # "pump" (one "replace"). BM25: report first (1.88, notes 1.01-1.19); reranked before stage four:
    # second (1.15, against 1.30 for the note on seals); stage four alone: first (4.01, notes
    # 1.13-2.01); bundled: first (3.87, notes 1.12-2.10).
    "pump-early": Trap(
        query="how often should the kestrel pump filter be replaced?",
        answer=PUMP_ANSWER,
        notes=PUMP_NOTES,
        sentences_before=2,
        sentences_after=40,
    ),
    # The answer sits in the middle of the report; the notes share "varnholm", "ferry" and "morning".
    # BM25: report first (1.87, notes 0.88-1.53); reranked before stage four: fourth (1.26, against
    # 2.83 for the cafe); stage four alone: first (3.13, against 2.72 for the cafe); bundled: first
    # (2.95, against 2.66 for the cafe).
    "ferry-middle": Trap(
        query="when does the varnholm ferry leave in the morning?",
        answer="On weekdays the Varnholm ferry leaves the north pier at 7:40 in the morning.",
        notes=(
            "The Varnholm ferry has a small cafe on the upper deck that opens in the morning.",
            "Tickets for the Varnholm ferry are sold at the kiosk on the north pier.",
            "The Varnholm ferry was repainted blue last spring.",
        ),
        sentences_before=20,
        sentences_after=20,
    ),
}

# The same pump folder with the answer as the report's first sentence: every bundled model so far ranks
# the report first (before stage four 1.39 against 1.30 for the note on seals; stage four alone 3.88
# against 2.01; bundled 3.50 against 2.10).
ANSWER_FIRST = Trap(
    query="how often should the kestrel pump filter be replaced?",
    answer=PUMP_ANSWER,
    notes=PUMP_NOTES,
    sentences_before=0,
    sentences_after=40,
)


@pytest.fixture(scope="module")
def bundled():
    if bundled_model_dir() is None:
        pytest.skip("this install carries no bundled model")
    return bundled_model_dir()


EXACT = ("--dtype", "float32")  # the mode these rankings are asserted in (see the module's docstring)


def search_files(capsys, folder: Path, query: str, *flags: str) -> list[str]:
    """The files `search --json` lists, best first (every candidate reranked: `--budget 0`)."""
    assert main(["search", str(folder), query, "--json", "--budget", "0", *flags]) == 0
    return [hit["file"] for hit in json.loads(capsys.readouterr().out)["results"]]


@pytest.mark.parametrize("trap", [*TRAPS.values(), ANSWER_FIRST], ids=[*TRAPS, "pump-answer-first"])
def test_bm25_alone_ranks_the_answering_file_first(trap, tmp_path, capsys):
    folder = trap.write(tmp_path / "folder")
    assert search_files(capsys, folder, trap.query, "--no-rerank")[0] == "report.txt"


def test_the_reranked_answer_that_opens_a_file_ranks_first(bundled, tmp_path, capsys):
    folder = ANSWER_FIRST.write(tmp_path / "folder")
    assert search_files(capsys, folder, ANSWER_FIRST.query, *EXACT)[0] == "report.txt"


@pytest.mark.parametrize("name", TRAPS)
def test_the_reranked_answering_file_ranks_first(name, bundled, tmp_path, capsys):
    trap = TRAPS[name]
    folder = trap.write(tmp_path / name)
    assert search_files(capsys, folder, trap.query, *EXACT)[0] == "report.txt"
