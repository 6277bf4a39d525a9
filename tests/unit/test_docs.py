"""The documentation as a reader meets it: README.md is a short front door, docs/ holds one page per
topic, every relative link and anchor leads somewhere, and no page speaks the team's internal
language (work-unit labels such as "session 7", bare issue numbers such as "#14")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README_MAX_LINES = 250

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
SESSION_LABEL = re.compile(r"\bsessions?[\s_-]*\d+", re.IGNORECASE)
ISSUE_NUMBER = re.compile(r"(?<![\w&])#\d+\b")


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lower case, every character but letters,
    digits, underscores, hyphens and spaces dropped, spaces turned into hyphens."""
    text = LINK.sub(lambda m: m.group(1), heading)
    text = INLINE_CODE.sub(lambda m: m.group(2), text)
    text = re.sub(r"(\*\*|__|\*)", "", text)
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in a markdown file, duplicates numbered -1, -2 as GitHub does."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in prose_lines(path.read_text()):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every markdown link and image outside code."""
    found = []
    for number, line in prose_lines(path.read_text()):
        line = INLINE_CODE.sub("", line)
        found += [(number, match.group(2)) for match in LINK.finditer(line)]
    return found


def broken_links(path: Path) -> list[str]:
    problems = []
    for number, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or not target:
            continue  # https:, mailto: ... are not this repository's to check
        file_part, _, fragment = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(ROOT)}:{number}: {target}"
        if not linked.exists():
            problems.append(f"{where}: no such file")
        elif fragment and linked.suffix != ".md":
            problems.append(f"{where}: an anchor into a file that is not markdown")
        elif fragment and fragment not in anchors(linked):
            problems.append(f"{where}: no heading with this anchor in {linked.relative_to(ROOT)}")
    return problems


def internal_labels(path: Path, root: Path = ROOT) -> list[str]:
    problems = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):  # code blocks included
        outside_links = LINK.sub(" ", line)
        for pattern in (SESSION_LABEL, ISSUE_NUMBER):
            problems += [f"{path.relative_to(root)}:{number}: {match.group(0)!r}"
                         for match in pattern.finditer(outside_links)]
    return problems


def test_the_readme_is_a_front_door_of_at_most_250_lines():
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move a topic into docs/"


@pytest.mark.parametrize("page", pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_and_anchor_leads_to_a_file_and_a_heading(page):
    assert broken_links(page) == []


@pytest.mark.parametrize("page", pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_no_page_names_a_work_session_or_a_bare_issue_number(page):
    assert internal_labels(page) == []


def test_the_anchors_follow_githubs_rules():
    assert slug("Exactness: `streamctl validate`") == "exactness-streamctl-validate"
    assert slug("The Flink job (`stack/flink/job.py`)") == "the-flink-job-stackflinkjobpy"
    assert slug("One stack model, one sequence, three runtimes") == "one-stack-model-one-sequence-three-runtimes"
    assert slug("connectors.lock") == "connectorslock"
    assert slug("Keeping up (2026-12-06, a254c57)") == "keeping-up-2026-12-06-a254c57"
    assert slug("The [live view](live-view.md) and **its** JSON") == "the-live-view-and-its-json"


def test_duplicate_headings_get_numbered_anchors(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Top\n## Limits\ntext\n## Limits\n## Limits\n```sh\n# not a heading\n```\n"
                    "[ok](#limits-2) [gone](#limits-3) [code](#not-a-heading)\n")
    assert anchors(page) == {"top", "limits", "limits-1", "limits-2"}
    assert [target for _, target in links(page)] == ["#limits-2", "#limits-3", "#not-a-heading"]


def test_labels_inside_a_link_are_allowed_and_elsewhere_refused(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("see [issue #14](https://example.org/issues/14), [the list](#14)\n"
                    "PKCS#8 keys, &#160;\nmeasured in Session 7 and goal (#14)\n```sh\n# session 2\n```\n")
    assert internal_labels(page, root=tmp_path) == ["page.md:3: 'Session 7'", "page.md:3: '#14'",
                                                    "page.md:5: 'session 2'"]
