"""mkdocs hooks: README.md, BENCHMARKS.md and the model card join the site from where they live.

The pages are written for GitHub, with links relative to their own place in the repository.
Here each page's links are resolved against that place and pointed at the same page in the
site; a link to a file the site does not hold (a YAML example, a JSON schema) keeps its text.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File

# Repository path -> path in the site, for pages that live outside docs/.
ROOT_PAGES = {
    "README.md": "index.md",
    "BENCHMARKS.md": "benchmarks.md",
    "src/maskwatch/weights/MODEL_CARD.md": "model-card.md",
}
DOCS_DIR = "docs"
FROZEN = "history/"  # frozen copies: their links are kept as text where they no longer resolve
# [text](target#anchor) outside code; targets with a scheme are left alone.
LINK = re.compile(r"\[([^\]]*)\]\(([^)\s#]*)(#[^)\s]*)?\)")


def on_files(files, config):
    root = Path(config.config_file_path).parent
    for repo_path, site_path in ROOT_PAGES.items():
        files.append(File.generated(config, site_path, abs_src_path=str(root / repo_path)))
    return files


def _repo_path(site_path: str) -> str:
    for repo_path, generated in ROOT_PAGES.items():
        if generated == site_path:
            return repo_path
    return f"{DOCS_DIR}/{site_path}"


def _site_path(repo_path: str) -> str | None:
    if repo_path in ROOT_PAGES:
        return ROOT_PAGES[repo_path]
    if repo_path.startswith(DOCS_DIR + "/"):
        return repo_path[len(DOCS_DIR) + 1:]
    return None


def on_page_markdown(markdown, page, config, files):
    here = page.file.src_uri
    root = Path(config.config_file_path).parent
    repo_dir = posixpath.dirname(_repo_path(here))

    def relink(match: re.Match) -> str:
        text, target, anchor = match.group(1), match.group(2), match.group(3) or ""
        if not target or "://" in target or target.startswith("mailto:"):
            return match.group(0)
        repo_target = posixpath.normpath(posixpath.join(repo_dir, target))
        site_path = _site_path(repo_target)
        if site_path is not None and files.get_file_from_path(site_path) is not None:
            return f"[{text}]({posixpath.relpath(site_path, posixpath.dirname(here) or '.')}{anchor})"
        if here.startswith(FROZEN) or (site_path is None and (root / repo_target).exists()):
            # A file of the repository that the site does not hold, or a frozen page's link
            # (written relative to the repository's top): its text stays, the link goes.
            return text
        return match.group(0)  # broken: left for mkdocs --strict to report

    return LINK.sub(relink, markdown)
