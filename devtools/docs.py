"""Rewrite the generated parts of the docs: `python -m devtools.docs` (`--check`: only compare).

Two parts: the table of `LIGHTSPEED_*` variables in docs/configuration.md, from
`lightspeed_pipeline.settings.SETTINGS` (tests/unit/test_settings.py holds them equal), and the
table of entities in README.md, from the registry (`lightspeed_pipeline.entities`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from lightspeed_pipeline import entities as reg  # noqa: E402
from lightspeed_pipeline.settings import markdown_table  # noqa: E402

CONFIGURATION = ROOT / "docs" / "configuration.md"
README = ROOT / "README.md"
BEGIN = "<!-- the settings table: generated from settings.py by `python -m devtools.docs`; do not edit -->\n"
END = "<!-- end of the settings table -->\n"
ENTITIES_BEGIN = "<!-- the entity table: generated from entities.py by `python -m devtools.docs`; do not edit -->\n"
ENTITIES_END = "<!-- end of the entity table -->\n"


def rendered(text: str, begin: str = BEGIN, end: str = END, table: str | None = None, name: str = "") -> str:
    """`text` with the part between the markers replaced by the table."""
    head, found, rest = text.partition(begin)
    _, found_end, tail = rest.partition(end)
    if not (found and found_end):
        raise SystemExit(f"{name or CONFIGURATION.relative_to(ROOT)}: the table markers are missing")
    return head + begin + (markdown_table() if table is None else table) + end + tail


def _paging(e: reg.Entity) -> str:
    """How a listing pages, in a few words."""
    paging = e.paging
    if isinstance(paging, reg.ParentPaging):
        parent = paging.parent.replace("_", " ")
        one = parent[:-3] + "y" if parent.endswith("ies") else parent.removesuffix("s")
        return f"per {one} whose version moved, by version"
    if isinstance(paging, reg.DescIdPaging):
        return (
            f"by id, newest first, {paging.first_size} then {paging.max_size} a page (fewer when they embed"
            f" over {paging.max_nested} items)"
        )
    if isinstance(paging, reg.WholeList):
        return "one answer, no cursor"
    if isinstance(paging, reg.IdPaging):
        return "by id (`page_info`)"
    if isinstance(paging, reg.PostedVersionPaging):
        return f"`POST`, by version, {paging.max_size} a page"
    return "by version"


def _deletions(e: reg.Entity) -> str:
    if isinstance(e.paging, reg.ParentPaging):
        return "each parent's listing is complete; a deleted parent takes its rows"
    if not e.versioned:
        return "listed in full every run"
    if e.deletions == "every_run":
        return "listed in full every run"
    if e.deletions == "periodic":
        return "listed in full every `LIGHTSPEED_RECONCILE_DAYS` days"
    return "delete feed (`deleted=true`)" if e.supports_deleted else "none needed (voided, not deleted)"


def _noop(e: reg.Entity) -> str:
    """Requests a run on unchanged data makes for the entity."""
    if isinstance(e.paging, reg.ParentPaging):
        return "0"
    if isinstance(e.paging, reg.WholeList):
        return "1"
    if isinstance(e.paging, reg.DescIdPaging):
        return f"⌈(cards - {e.paging.first_size}) / {e.paging.max_size}⌉ + 2"
    if isinstance(e.paging, reg.IdPaging):
        return "⌈rows / 1000⌉"
    return "2" if e.deletions == "every_run" else "1"


def _changes(e: reg.Entity) -> str:
    """Requests to read what changed."""
    if isinstance(e.paging, reg.ParentPaging):
        return "per parent that moved: ⌈its rows / page⌉ + 1"
    if not e.versioned or e.deletions == "every_run":
        return "as a no-op run (all is read)"
    return "⌈changed / page⌉ + 1"


def _cell(e: reg.Entity, part: object) -> str:
    """A cell, with what the dated versions change where they do."""
    old, new = part(e.at(e.since)), part(e.at(reg.NEWEST))  # type: ignore[operator]
    return old if old == new else f"{e.since}: {old}; {reg.NEWEST}: {new}"


def entity_table() -> str:
    """The README's table of entities: endpoint, versions, paging, deletions, scope, requests."""
    rows = [
        "| entity | endpoint | API | paging | deletions | scope | requests, no-op run | requests, changes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in reg.ORDERED:
        api = "2.0, 2026-07" if e.since == reg.V2 else f"{e.since} on"
        rows.append(
            f"| `{e.name}` | `{e.endpoint}` | {api} | {_cell(e, _paging)} | {_cell(e, _deletions)} | `{e.read_scope}`"
            f" | {_cell(e, _noop)} | {_cell(e, _changes)} |"
        )
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the docs differ from the code")
    args = parser.parse_args()
    for path, new_text in (
        (CONFIGURATION, rendered(CONFIGURATION.read_text())),
        (README, rendered(README.read_text(), ENTITIES_BEGIN, ENTITIES_END, entity_table(), "README.md")),
    ):
        if path.read_text() == new_text:
            continue
        if args.check:
            raise SystemExit(f"{path.relative_to(ROOT)} is out of date: run python -m devtools.docs")
        path.write_text(new_text)


if __name__ == "__main__":
    main()
