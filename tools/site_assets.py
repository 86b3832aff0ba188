"""mkdocs hook that serves the site's math and diagram renderers from the site itself.

The site loads nothing from other hosts, so that it works offline. KaTeX (math) and Mermaid
(diagrams) are npm packages pinned in `package.json`/`package-lock.json`; `make env` installs
them into `node_modules/` with `npm ci`, and this hook adds the files the pages load to the
build, under `assets/vendor/` (`extra_javascript`/`extra_css` in mkdocs.yml name them;
`docs/javascripts/mermaid.js` loads Mermaid on the pages that draw a diagram).
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

VENDOR_DIR = "assets/vendor"

# Folder in the site under VENDOR_DIR -> (folder under node_modules/, file names or patterns).
VENDORED: dict[str, tuple[str, tuple[str, ...]]] = {
    "katex": ("katex/dist", ("katex.min.js", "katex.min.css", "fonts/*")),
    "mermaid": ("mermaid/dist", ("mermaid.min.js",)),
}


def vendored_files(node_modules: Path) -> dict[str, Path]:
    """The files to serve: their path in the site, mapped to their path on disk.

    Raises:
        PluginError: A package or file is missing from `node_modules` (run `make env`).
    """
    files: dict[str, Path] = {}
    for site_folder, (package_folder, patterns) in VENDORED.items():
        source = node_modules / package_folder
        for pattern in patterns:
            found = sorted(path for path in source.glob(pattern) if path.is_file())
            if not found:
                raise PluginError(
                    f"{source / pattern} is missing: the site serves KaTeX and Mermaid from "
                    "node_modules/. Install them with `make env` (or `npm ci` in the folder "
                    "of mkdocs.yml)."
                )
            for path in found:
                relative = path.relative_to(source).as_posix()
                files[f"{VENDOR_DIR}/{site_folder}/{relative}"] = path
    return files


def on_files(files: Files, config: MkDocsConfig) -> Files:
    node_modules = Path(config.config_file_path).parent / "node_modules"
    for src_uri, path in vendored_files(node_modules).items():
        files.append(File.generated(config, src_uri, abs_src_path=str(path)))
    return files
