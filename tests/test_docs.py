"""Every relative link and image in the repository's Markdown points at a file of the repository
and, with a #fragment, at a heading of that Markdown file."""

import pathlib
import re
import subprocess
import urllib.parse

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
FILES = subprocess.run(
    ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
    cwd=ROOT, capture_output=True, text=True, check=True,
).stdout.split()  # fmt: skip
FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1", re.M | re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = ("http://", "https://", "mailto:")


def prose(path):
    """The Markdown of `path` without fenced code blocks and inline code."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", path.read_text()))


def anchors(path):
    """GitHub's heading ids: lowercase, only letters, digits, spaces, - and _, spaces as -."""
    headings = re.findall(r"^ {0,3}#{1,6}\s+(.+?)\s*#*\s*$", prose(path), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def broken(path, target):
    """Why the link `target` in `path` points at nothing, or None when it is sound."""
    name, _, fragment = urllib.parse.unquote(target).partition("#")
    if name.startswith("/"):
        return "is an absolute path"
    resolved = (path.parent / name).resolve() if name else path
    if not resolved.is_relative_to(ROOT):
        return "points outside the repository"
    if not resolved.exists():
        return "names no file"
    if fragment and (resolved.suffix != ".md" or fragment not in anchors(resolved)):
        return f"names no heading #{fragment} in {resolved.relative_to(ROOT)}"
    return None


@pytest.mark.parametrize("name", FILES)
def test_relative_links_point_at_something(name):
    path = ROOT / name
    targets = [t for t in LINK.findall(prose(path)) if not t.startswith(EXTERNAL)]
    problems = [f"{target} {why}" for target in targets if (why := broken(path, target))]
    assert not problems, f"{name}: " + "; ".join(problems)
