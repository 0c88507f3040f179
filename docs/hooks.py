"""MkDocs hooks: pages generated from the repository's own sources at build time.

    index.md     README.md           (links into the repository rewritten for the site)
    numerics.md  NUMERICS.md
    cli.md       `intsim --help` and every `intsim COMMAND --help`, from the argparse parser

so the README stays the quick start, NUMERICS.md the one spec, and the CLI reference is the
--help text itself.
"""
from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
#: the package as installed (models/ and datasets/ inside intsim/), as links, for the API pages
SOURCE_VIEW = ROOT / ".docs-src"


def _source_view() -> None:
    """SOURCE_VIEW/intsim: links to intsim/*, plus models/ and datasets/ where an install puts
    them (intsim.models, intsim.datasets), so the API reference can read every module."""
    pkg = SOURCE_VIEW / "intsim"
    pkg.mkdir(parents=True, exist_ok=True)
    entries = {p.name: p for p in (ROOT / "intsim").iterdir() if p.name != "__pycache__"}
    entries.update(models=ROOT / "models", datasets=ROOT / "datasets")
    for name, target in entries.items():
        link = pkg / name
        if not link.is_symlink():
            link.symlink_to(target)


_source_view()
#: repository paths -> site pages
LINKS = {"NUMERICS.md": "numerics.md", "README.md": "index.md", "docs/method.md": "method.md",
         "docs/data.md": "data.md", "docs/fidelity.md": "fidelity.md", "../NUMERICS.md":
         "numerics.md", "../README.md": "index.md"}


def _site_links(text: str) -> str:
    """[x](path) links: known documents to their pages, other repository files to plain text
    (a site page cannot link into the source tree)."""
    def fix(m):
        label, target = m.group(1), m.group(2)
        path, _, anchor = target.partition("#")
        if target.startswith(("http://", "https://", "#", "mailto:")):
            return m.group(0)
        if path in LINKS:
            return f"[{label}]({LINKS[path]}{'#' + anchor if anchor else ''})"
        return f"`{path}`" if label.strip("`") == path else f"{label} (`{path}`)"
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", fix, text)


def _cli_reference() -> str:
    from intsim.cli import build_parser
    parser = build_parser()
    parts = ["# Command line", "", "Every subcommand's `--help`, as the installed `intsim` "
             "prints it.", "", "```text", parser.format_help().rstrip(), "```"]
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():
        parts += ["", f"## intsim {name}", "", "```text", p.format_help().rstrip(), "```"]
    return "\n".join(parts) + "\n"


def on_files(files, config):
    pages = {"index.md": _site_links((ROOT / "README.md").read_text(encoding="utf-8")),
             "numerics.md": _site_links((ROOT / "NUMERICS.md").read_text(encoding="utf-8")),
             "cli.md": _cli_reference()}
    for uri, content in pages.items():
        files.append(File.generated(config, uri, content=content))
    return files


def on_page_markdown(markdown, page, config, files):
    return _site_links(markdown) if page.file.src_uri in ("method.md", "data.md",
                                                           "fidelity.md") else markdown
