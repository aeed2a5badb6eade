"""Every shell block the documentation says "runs as written" is run, as written.

A block claims to run as written when the text that leads into it (from the
closest heading or the end of the previous code block, whichever is nearer)
contains ``(runs as written)``: a heading such as ``## Quick start (runs as
written)`` or a sentence just before the block.  Every such block in README.md
and docs/*.md must be a ``bash`` block; each is run here with
``bash -e -o pipefail`` in a fresh empty directory, with this interpreter's
``bin`` folder first on PATH (so ``gunicorn``, ``flask`` and the package are the
virtualenv's), ``PORT`` set to a free loopback port (blocks write
``${PORT:-3210}``), a timeout, and in a process group of its own that is killed
afterwards, whatever the block left running.

The block must exit 0 (its own ``grep``\\ s check the answers it shows), stop
every server it started, and print every fully written ``"field":value`` pair
and ``(HTTP nnn)`` of its expected-output comments (lines ``# {...`` or
``# [...``): a comment that shows an output the block does not produce fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.paths import DOCS_DIR, README, REPO_ROOT
from support.servers import child_environment, free_port

MARKER = "(runs as written)"
SHELLS = ("bash", "sh", "shell")
BLOCK_TIMEOUT = 90.0  # seconds for one block; they take a few
SHUTDOWN_GRACE = 15.0  # seconds for the servers a block stopped to exit

_FENCE = re.compile(r"^\s*```(\S*)\s*$")
_HEADING = re.compile(r"^#{1,6} ")
# A JSON member written out in full: "name":"text", true, false, null or a number.
_MEMBER = re.compile(r'"[A-Za-z_]+":\s*(?:"(?:[^"\\]|\\.)*"|true|false|null|-?\d+(?:\.\d+)?)')
_HTTP_STATUS = re.compile(r"\(HTTP \d{3}\)")
_MENTION = re.compile(r"runs\s+as\s+written", re.IGNORECASE)


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    runnable: bool

    @property
    def id(self) -> str:
        return f"{self.doc.relative_to(REPO_ROOT)}:{self.line}"

    def promised_output(self) -> list[str]:
        """The fully written members and HTTP statuses of its expected-output comments."""
        promised: list[str] = []
        for line in self.text.splitlines():
            comment = line.strip()
            if not comment.startswith(("# {", "# [")):
                continue
            promised += [m for m in _MEMBER.findall(comment) if "..." not in m]
            promised += _HTTP_STATUS.findall(comment)
        return promised


def documents() -> list[Path]:
    return [README, *sorted(DOCS_DIR.glob("*.md"))]


def code_blocks(doc: Path) -> list[Block]:
    blocks: list[Block] = []
    lead_in: list[str] = []  # text since the last heading or closing fence
    lines = doc.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = _FENCE.match(line)
        if fence is None:
            if _HEADING.match(line):
                lead_in = []
            lead_in.append(line)
            index += 1
            continue
        indent = len(line) - len(line.lstrip())
        start = index
        body: list[str] = []
        index += 1
        while index < len(lines) and not _FENCE.match(lines[index]):
            body.append(lines[index][indent:])
            index += 1
        index += 1  # the closing fence
        runnable = MARKER in " ".join(lead_in)
        blocks.append(Block(doc, start + 1, fence.group(1), "\n".join(body) + "\n", runnable))
        lead_in = []
    return blocks


def runnable_blocks() -> list[Block]:
    return [block for doc in documents() for block in code_blocks(doc) if block.runnable]


def test_runnable_blocks_are_marked_consistently() -> None:
    blocks = runnable_blocks()
    assert blocks, f"no block in the docs says {MARKER!r}: the marker was renamed?"
    not_shell = [block.id for block in blocks if block.language not in SHELLS]
    assert not not_shell, f"only shell blocks can run as written: {not_shell}"
    # Every mention of the marker (or a near miss of it) leads into a block: none is left
    # dangling, and no block claims to run in words this test does not recognise.
    for doc in documents():
        mentions = len(_MENTION.findall(doc.read_text(encoding="utf-8")))
        marked = sum(1 for block in code_blocks(doc) if block.runnable)
        assert mentions == marked, (
            f"{doc.name}: {mentions} mention(s) of {MARKER!r} but {marked} block(s) they "
            "lead into; put the marker in the heading or sentence just before its block"
        )


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


@pytest.mark.timeout(BLOCK_TIMEOUT + SHUTDOWN_GRACE + 30)
@pytest.mark.parametrize("block", runnable_blocks(), ids=lambda block: block.id)
def test_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    bin_dir = str(Path(sys.executable).parent)
    env = child_environment(
        {
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "PORT": str(free_port()),
            "PYTHONUNBUFFERED": "1",
        }
    )
    for name in list(env):
        if name.startswith("FLASK_"):
            del env[name]
    stdout_path, stderr_path = tmp_path / "stdout", tmp_path / "stderr"
    # Output to files, not pipes: a server the block leaves running would hold a pipe open.
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            ["bash", "-e", "-o", "pipefail", "-c", block.text],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    started = time.monotonic()
    left_running = False
    try:
        try:
            returncode = process.wait(timeout=BLOCK_TIMEOUT)
        except subprocess.TimeoutExpired:
            returncode = None
        deadline = time.monotonic() + SHUTDOWN_GRACE
        while _group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        left_running = _group_alive(process.pid)
    finally:
        _kill_group(process.pid)
        if process.poll() is None:
            process.wait(timeout=10)
    elapsed = time.monotonic() - started
    output = stdout_path.read_text(errors="replace")
    report = (
        f"{block.id} (port {env['PORT']}, {elapsed:.1f} s)\n--- block\n{block.text}"
        f"--- stdout\n{output}--- stderr\n{stderr_path.read_text(errors='replace')}"
    )
    assert returncode is not None, f"did not finish within {BLOCK_TIMEOUT} s: {report}"
    assert returncode == 0, f"exit status {returncode}: {report}"
    assert not left_running, f"left processes running (stop every server it starts): {report}"
    missing = [promised for promised in block.promised_output() if promised not in output]
    assert not missing, f"output its comments show but it did not print: {missing}\n{report}"
