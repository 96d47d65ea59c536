"""The repository is self-contained: no tracked text file refers to a document outside it.

Upbit facts live in docs/UPBIT.md (each with its public source), design decisions in
docs/DESIGN.md, how to run the long checks in docs/CONTRIBUTING.md. Names of documents that were
never part of the repository, and attributions to an outside specification, must not creep back.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()

#: Where the checked files live: these folders, plus the top-level files below.
FOLDERS = ("engine/", "actors/", "tests/", "docs/", "bench/")
TOP_LEVEL = ("README.md", "pyproject.toml")
SUFFIXES = (".py", ".md", ".toml", ".json")
EXCLUDED = ("bench/.peers-venv/",)

#: Mentions of outside documents (or of an outside specification), case-insensitive.
FORBIDDEN = re.compile(
    r"UPBIT-PROTOCOL|SEED\.en|ARCHITECTURE\.md|shared/research|faults-bugs|the brief",
    re.IGNORECASE,
)


def _wanted(path: str) -> bool:
    if path == THIS or path.startswith(EXCLUDED):
        return False
    if path in TOP_LEVEL:
        return True
    return path.startswith(FOLDERS) and path.endswith(SUFFIXES)


def _tracked_files() -> list[str]:
    git = shutil.which("git")
    if git is not None:
        result = subprocess.run(
            [git, "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False
        )
        if result.returncode == 0:
            return [line for line in result.stdout.splitlines() if line]
    # No git (an unpacked archive, say): walk the tree instead.
    return [
        path.relative_to(ROOT).as_posix()
        for path in sorted(ROOT.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(ROOT).parts
    ]


def _files() -> list[str]:
    return [path for path in _tracked_files() if _wanted(path) and (ROOT / path).is_file()]


def test_the_check_sees_the_repository() -> None:
    files = _files()
    # Guards against a filter that silently checks nothing.
    assert "README.md" in files
    assert "docs/UPBIT.md" in files
    assert any(path.startswith("engine/") for path in files)
    assert THIS not in files


def test_no_file_refers_to_documents_outside_the_repository() -> None:
    hits = []
    for path in _files():
        text = (ROOT / path).read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            match = FORBIDDEN.search(line)
            if match is not None:
                hits.append(f"{path}:{number}: {match.group(0)!r} in {line.strip()[:120]}")
    assert not hits, (
        f"{len(hits)} line(s) refer to documents outside the repository; state the fact itself "
        "(Upbit facts in docs/UPBIT.md with their public source, design in docs/DESIGN.md):\n"
        + "\n".join(hits)
    )
