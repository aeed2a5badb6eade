"""docs/security.md cites a test for every claim: each cited test must exist.

The document cites tests by file name (``test_x.py::test_y``); test file names are
unique across the folders of tests/, so a name finds its file wherever it lives.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from support.paths import DOCS_DIR, TESTS_DIR

THREAT_MODEL = DOCS_DIR / "security.md"
CITATION = re.compile(r"`(test_\w+\.py)::(test_\w+)`")


def find_test_file(name: str) -> Path | None:
    """The test file called ``name``, in whichever folder of tests/ it is."""
    found = sorted(TESTS_DIR.rglob(name))
    return found[0] if found else None


def defined_tests(path: Path | None) -> set[str]:
    if path is None:
        return set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.name.startswith("test_")
    }


def test_every_test_cited_in_the_threat_model_exists() -> None:
    citations = CITATION.findall(THREAT_MODEL.read_text(encoding="utf-8"))
    assert len(citations) > 50  # the pattern still matches how the document cites
    missing = [
        f"{file}::{name}"
        for file, name in sorted(set(citations))
        if name not in defined_tests(find_test_file(file))
    ]
    assert missing == []
