"""Every relative link in README.md, CHANGELOG.md and docs/ points at a file that exists, and
every #anchor at a heading of that file (GitHub's heading ids); the README
stays a short front door."""

import collections
import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
PAGES = sorted([REPO / "README.md", REPO / "CHANGELOG.md", *(REPO / "docs").rglob("*.md")])

# [text](target) and ![alt](target), with an optional "title" after the target.
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"`[^`]*`")


def _prose_lines(text):
    """The lines outside fenced code blocks, with inline code spans removed."""
    in_fence = False
    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            yield line


def heading_ids(text):
    """The ids GitHub gives the headings of a Markdown text, in order."""
    ids, seen = [], collections.Counter()
    for line in _prose_lines(text):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(1))
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        ids.append(f"{slug}-{seen[slug]}" if seen[slug] else slug)
        seen[slug] += 1
    return ids


def links(text):
    """The link targets of a Markdown text, outside code."""
    for line in _prose_lines(text):
        yield from _LINK.findall(_CODE_SPAN.sub("", line))


def test_heading_ids_follow_github():
    text = ("# Speed: which path runs when\n```sh\n# not a heading\n```\n"
            "## The layer's contract\n## IMDB (`recipes/imdb_sentiment`)\n"
            "## Flags\n## Flags\n")
    assert heading_ids(text) == [
        "speed-which-path-runs-when", "the-layers-contract",
        "imdb-recipesimdb_sentiment", "flags", "flags-1"]


def test_links_skip_code():
    text = "[a](x.md) `[b](y.md)` ![c](d.png \"t\")\n```\n[e](z.md)\n```\n"
    assert list(links(text)) == ["x.md", "d.png"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page):
    broken = []
    for target in links(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists():
            broken.append(f"{target} (no file {destination})")
        elif anchor and destination.suffix == ".md" and anchor not in heading_ids(
                destination.read_text(encoding="utf-8")):
            broken.append(f"{target} (no heading #{anchor} in {destination.name})")
    assert not broken, f"broken links in {page.relative_to(REPO)}: {broken}"


def test_readme_is_a_short_front_door():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; at most 300"
    first = "\n".join(lines[:40])
    assert "python -m recipes.long_range --model_dir=runs/long_range" in first
    assert "python -m pytest -q" in first
