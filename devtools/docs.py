"""Rewrite the generated parts of the docs: `python -m devtools.docs` (`--check`: only compare).

Today one part: the table of `LIGHTSPEED_*` variables in docs/configuration.md, from
`lightspeed_pipeline.settings.SETTINGS` (tests/unit/test_settings.py holds them equal).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from lightspeed_pipeline.settings import markdown_table  # noqa: E402

CONFIGURATION = ROOT / "docs" / "configuration.md"
BEGIN = "<!-- the settings table: generated from settings.py by `python -m devtools.docs`; do not edit -->\n"
END = "<!-- end of the settings table -->\n"


def rendered(text: str) -> str:
    """`text` with the part between the markers replaced by the table."""
    head, found, rest = text.partition(BEGIN)
    _, found_end, tail = rest.partition(END)
    if not (found and found_end):
        raise SystemExit(f"{CONFIGURATION.relative_to(ROOT)}: the settings table markers are missing")
    return head + BEGIN + markdown_table() + END + tail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the docs differ from the code")
    args = parser.parse_args()
    text = CONFIGURATION.read_text()
    new = rendered(text)
    if args.check:
        if new != text:
            raise SystemExit(f"{CONFIGURATION.relative_to(ROOT)} is out of date: run python -m devtools.docs")
        return
    CONFIGURATION.write_text(new)


if __name__ == "__main__":
    main()
