"""MkDocs hook: the README as the site's user guide, and links that leave docs/ made to work in the site.

The pages in docs/ are also read in the repository itself, where a link such as
`../README.md#development` or `../genofm/model.py` works. In the site those targets are not
pages, so this hook, before each page is rendered:

- links a few repository files to the site page that shows them (`SITE_PAGES`: the README is
  the generated page `user-guide.md`, `config/schema.yaml` the configuration reference);
- rewrites links to pages of docs/ given from outside it (the README's `docs/x.md`) as links
  within the site (a link to a page that does not exist stays one, so that
  `mkdocs build --strict` reports it);
- turns links to any other file of the repository into its name (or a link into `repo_url`,
  when mkdocs.yml sets one).

Anchors are kept. Fenced code blocks and inline code are left alone.

Enabled in mkdocs.yml with `hooks: [docs/hooks/repo_links.py]`.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File, Files

README = "README.md"
USER_GUIDE = "user-guide.md"
SITE_PAGES = {README: USER_GUIDE, "config/schema.yaml": "configuration.md"}  # repository file -> site page

_LINK = re.compile(r"(?<!!)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^()\s]+)\)")
_CODE = re.compile(r"(^(?:```|~~~).*?^(?:```|~~~)[ \t]*$|`+[^`\n]*`+)", re.S | re.M)


def _root(config) -> Path:
    return Path(config.config_file_path).resolve().parent


def _docs_prefix(config) -> str:
    return Path(config.docs_dir).resolve().relative_to(_root(config)).as_posix()


def on_files(files: Files, config) -> Files:
    files.append(File.generated(config, USER_GUIDE, content=(_root(config) / README).read_text()))
    return files


def on_serve(server, config, builder):
    server.watch(str(_root(config) / README))
    return server


def on_page_markdown(markdown: str, page, config, files: Files) -> str:
    src = page.file.src_uri
    docs = _docs_prefix(config)
    # where the page's text lives in the repository, which its relative links are relative to
    repo_path = README if src == USER_GUIDE else f"{docs}/{src}"
    page_dir = posixpath.dirname(src)

    def site_link(target_page: str, anchor: str) -> str:
        return posixpath.relpath(target_page, page_dir or ".") + anchor

    def rewrite(match: re.Match) -> str:
        text, target = match.group(1), match.group(2)
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^#|^/", target):  # URL, anchor or absolute path
            return match.group(0)
        path, _, anchor = target.partition("#")
        anchor = f"#{anchor}" if anchor else ""
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(repo_path), path))
        if resolved in SITE_PAGES:
            return f"[{text}]({site_link(SITE_PAGES[resolved], anchor)})"
        if resolved == docs or resolved.startswith(f"{docs}/"):  # a page of the site (a missing one: mkdocs says so)
            inside = "index.md" if resolved == docs else posixpath.relpath(resolved, docs)
            return f"[{text}]({site_link(inside, anchor)})"
        # any other file of the repository
        if config.repo_url:
            return f"[{text}]({config.repo_url.rstrip('/')}/blob/HEAD/{resolved}{anchor})"
        return f"`{resolved}`" if text.strip("`") == resolved.rstrip("/") or text == path else text

    pieces = _CODE.split(markdown)
    # the split keeps code (odd positions) as it is
    return "".join(piece if i % 2 else _LINK.sub(rewrite, piece) for i, piece in enumerate(pieces))
