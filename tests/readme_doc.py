"""The manual as data, for tests/test_readme*.py (not a test module):
sections, code blocks with their test markers, and tables of README.md,
docs/*.md and the configs' folder READMEs.

A marker is an HTML comment on the line before a block's fence (invisible
when rendered): ``<!-- test: config -->``, ``<!-- test: quickstart -->``,
``<!-- test: skip, needs a GPU -->`` (see tests/test_readme.py).
"""
import glob
import os.path as osp
import re
from dataclasses import dataclass
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
README = osp.join(REPO, 'README.md')
MARKER = re.compile(r'^<!--\s*test:\s*(.*?)\s*-->$')
FENCE = re.compile(r'^(\s*)```\s*([\w+-]*)\s*$')
HEADING = re.compile(r'^(#{1,6})\s+(.*?)\s*#*\s*$')


@dataclass
class Block:
    """A fenced code block: its language, text (de-indented) and marker."""
    path: str  # relative to the repository
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    marker: Optional[str]

    @property
    def id(self) -> str:
        return f'{self.path}:{self.line}'


@dataclass
class Section:
    """A heading and its text up to the next heading of its level or
    higher (subsections included)."""
    title: str
    level: int
    line: int
    anchor: str
    text: str


def slug(title: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped
    (backticks, colons, dots, parentheses), spaces as hyphens."""
    text = re.sub(r'[^\w\- ]', '', title.strip().lower())
    return text.replace(' ', '-')


class Document:
    """One markdown file of the repository."""

    def __init__(self, path: str):
        self.path = osp.relpath(osp.abspath(path), REPO)
        with open(osp.join(REPO, self.path), encoding='utf-8') as f:
            self.text = f.read()
        self.lines = self.text.split('\n')
        self.blocks: List[Block] = []
        self._headings = []  # (line index, level, title)
        self._parse()
        self.sections = self._sections()

    def _parse(self) -> None:
        fence_indent, start, lang, marker, body = None, 0, '', None, []
        previous = ''
        for index, line in enumerate(self.lines):
            fence = FENCE.match(line)
            if fence_indent is None:
                if fence:
                    fence_indent, start, lang = len(fence.group(1)), \
                        index, fence.group(2)
                    found = MARKER.match(previous.strip())
                    marker = found.group(1) if found else None
                    body = []
                    continue
                heading = HEADING.match(line)
                if heading:
                    self._headings.append(
                        (index, len(heading.group(1)), heading.group(2)))
                if line.strip():
                    previous = line
                continue
            if fence and not fence.group(2) and \
                    len(fence.group(1)) <= fence_indent:
                self.blocks.append(Block(self.path, start + 1, lang,
                                         '\n'.join(body) + '\n', marker))
                fence_indent, previous = None, ''
                continue
            body.append(line[fence_indent:] if line[:fence_indent].strip()
                        == '' else line)
        assert fence_indent is None, f'{self.path}: unclosed code block'

    def _sections(self) -> List[Section]:
        sections, seen = [], {}
        for i, (index, level, title) in enumerate(self._headings):
            end = next((j for j, lv, _ in self._headings[i + 1:]
                        if lv <= level), len(self.lines))
            anchor = slug(title)
            count = seen.get(anchor, 0)
            seen[anchor] = count + 1
            if count:
                anchor = f'{anchor}-{count}'
            sections.append(Section(title, level, index + 1, anchor,
                                    '\n'.join(self.lines[index:end])))
        return sections

    def section(self, title: str) -> Section:
        """The first section of this title (an AssertionError naming the
        titles there are, when missing)."""
        for section in self.sections:
            if section.title == title:
                return section
        raise AssertionError(
            f'{self.path} has no section {title!r}; it has: '
            f'{[s.title for s in self.sections]}')

    def blocks_in(self, section: Section) -> List[Block]:
        end = section.line + section.text.count('\n')
        return [b for b in self.blocks if section.line < b.line <= end]

    @property
    def anchors(self) -> set:
        return {s.anchor for s in self.sections}


def tables(text: str) -> List[List[Dict[str, str]]]:
    """Every markdown table of ``text`` as a list of rows, each a dict of
    header -> cell text."""
    found, rows, header = [], None, None
    for line in text.split('\n') + ['']:
        line = line.strip()
        if line.startswith('|') and line.endswith('|'):
            cells = [c.strip() for c in line[1:-1].split('|')]
            if header is None:
                header = cells
            elif all(set(c) <= set('-: ') for c in cells):
                rows = []
            elif rows is not None:
                rows.append(dict(zip(header, cells)))
            continue
        if rows is not None:
            found.append(rows)
        rows, header = None, None
    return found


def manual_files() -> List[str]:
    """README.md, docs/*.md and the configs' folder READMEs."""
    return [README] + sorted(glob.glob(osp.join(REPO, 'docs', '*.md'))) + \
        sorted(glob.glob(osp.join(REPO, 'configs', '*', 'README.md')))


def folder_tables() -> Dict[str, str]:
    """configs/<folder>/README.md paths, by folder."""
    return {osp.basename(osp.dirname(p)): p for p in
            sorted(glob.glob(osp.join(REPO, 'configs', '*', 'README.md')))}
