"""MkDocs hook: the notebooks under ``notebooks/`` as site pages, without copying them.

mkdocs-jupyter converts the ``.ipynb`` files that MkDocs lists among its files, and MkDocs lists
only what lies under ``docs_dir``. This hook adds each notebook of the repository's
``notebooks/`` folder as a file ``notebooks/<name>.ipynb`` whose source stays where it is, before
mkdocs-jupyter wraps the files (a higher priority than the plugins' default 0). The notebooks are
stored without outputs and rendered as stored (``execute: false``).
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
"""The repository's notebooks, outside ``docs_dir``."""


@event_priority(100)
def on_files(files: Files, config: MkDocsConfig) -> Files:
    for notebook in sorted(NOTEBOOKS.glob("*.ipynb")):
        # A file rooted at the repository rather than ``File.generated``: mkdocs-jupyter's
        # wrapper recomputes ``abs_src_path`` from ``src_dir``, which a generated file lacks.
        files.append(File(f"notebooks/{notebook.name}", src_dir=str(NOTEBOOKS.parent),
                          dest_dir=config.site_dir, use_directory_urls=config.use_directory_urls))
    return files
