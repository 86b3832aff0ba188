"""What an example uses from the documented library, found from source code alone (AST).

Nothing here imports the library or the examples: the analysis must work before an example runs
and must not be fooled by what happens to be in `sys.modules`.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.util
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Library:
    """A package's public names and the source files each of them depends on.

    Attributes:
        name: The import name of the package, for instance `gallery_lib`.
        root: The package directory (the one holding `__init__.py`).
        public: Public name -> dotted module (`gallery_lib.trainer._trainer`) that defines it,
            from the `from .module import Name` re-exports of `__init__.py`, followed through
            the `__init__.py` of subpackages.
    """

    name: str
    root: Path
    public: dict[str, str]

    @classmethod
    def find(cls, name: str) -> Library:
        """Locate the package `name` on `sys.path` without importing it and read its re-exports."""
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None or not spec.origin.endswith("__init__.py"):
            raise ModuleNotFoundError(
                f"gallery hooks: the documented package {name!r} (mkdocs-gallery's `doc_module`) "
                "is not an importable package; install it or add its folder to PYTHONPATH."
            )
        root = Path(spec.origin).parent
        library = cls(name, root, {})
        public = {
            public_name: library._defining_module(public_name, module)
            for public_name, module in library._reexports(name).items()
        }
        return cls(name, root, public)

    def _reexports(self, package: str) -> dict[str, str]:
        """Name -> module of the `from .module import Name` lines of `package`'s `__init__.py`."""
        init = self.module_file(package)
        if init is None or init.name != "__init__.py":
            return {}
        found: dict[str, str] = {}
        for node in ast.parse(init.read_text()).body:
            if isinstance(node, ast.ImportFrom):
                module = _absolute(node, f"{package}.__init__", package)
                for alias in node.names:
                    if module == package:  # `from . import sub`: the name is a submodule
                        found[alias.asname or alias.name] = f"{package}.{alias.name}"
                    elif module is not None and module.startswith(self.name + "."):
                        found[alias.asname or alias.name] = module
        return found

    def _defining_module(self, name: str, module: str) -> str:
        """Follow re-exports through subpackages (`.trainer` -> `.trainer._trainer`)."""
        seen = set()
        while module not in seen:
            seen.add(module)
            deeper = self._reexports(module).get(name)
            if deeper is None or deeper == f"{module}.{name}":
                break
            module = deeper
        return module

    def module_file(self, module: str) -> Path | None:
        """The source file of the dotted `module` inside this package, if there is one."""
        parts = module.split(".")[1:]
        base = self.root.joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
        return None

    def closure(self, modules: set[str]) -> set[Path]:
        """The files of `modules` and of every package module they import, transitively.

        The package's own `__init__.py` is left out: it only re-exports, and following it would
        make every example depend on every module. What an example takes from it is tracked by
        name instead (see `dependency_key`).
        """
        hub = self.root / "__init__.py"
        seen: set[Path] = set()
        todo = [self.module_file(m) for m in modules]
        while todo:
            path = todo.pop()
            if path is None or path in seen or path == hub:
                continue
            seen.add(path)
            module = self._dotted(path)
            for node in ast.walk(ast.parse(path.read_text())):
                for imported in _imported_modules(node, module, self.name):
                    if imported == self.name or imported.startswith(self.name + "."):
                        todo.append(self.module_file(imported))
        return seen

    def _dotted(self, path: Path) -> str:
        parts = [self.name, *path.relative_to(self.root).with_suffix("").parts]
        return ".".join(parts)


@dataclasses.dataclass
class Usage:
    """What one example script takes from a library.

    Attributes:
        aliases: Local name -> the dotted identifier it stands for, for every name bound by an
            import from the library (`JaxTrainer` -> `gallery_lib.JaxTrainer`,
            `gl` -> `gallery_lib`).
        used: The public names of the library the example refers to.
        modules: The library modules the example imports (the package itself included).
    """

    aliases: dict[str, str] = dataclasses.field(default_factory=dict)
    used: set[str] = dataclasses.field(default_factory=set)
    modules: set[str] = dataclasses.field(default_factory=set)

    def resolve(self, dotted: str) -> str | None:
        """The identifier that the dotted expression `dotted` of the example code refers to.

        >>> usage = Usage(aliases={"gl": "gallery_lib", "T": "gallery_lib.JaxTrainer"})
        >>> usage.resolve("gl.JaxTrainer.fit"), usage.resolve("T"), usage.resolve("np.sum")
        ('gallery_lib.JaxTrainer.fit', 'gallery_lib.JaxTrainer', None)
        """
        head, _, rest = dotted.partition(".")
        target = self.aliases.get(head)
        if target is None:
            return None
        return f"{target}.{rest}" if rest else target


def example_usage(source: str, library: Library) -> Usage:
    """Find what the example `source` imports and uses from `library`.

    >>> lib = Library("gallery_lib", Path("."), {"JaxTrainer": "gallery_lib.trainer._trainer"})
    >>> code = "import gallery_lib as gl\\nfrom gallery_lib import JaxTrainer\\ngl.JaxTrainer()"
    >>> usage = example_usage(code, lib)
    >>> sorted(usage.aliases.items()), usage.used
    ([('JaxTrainer', 'gallery_lib.JaxTrainer'), ('gl', 'gallery_lib')], {'JaxTrainer'})
    """
    usage = Usage()
    prefix = library.name + "."
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == library.name or alias.name.startswith(prefix):
                    usage.modules.add(alias.name)
                    if alias.asname:
                        usage.aliases[alias.asname] = alias.name
                    else:
                        head = alias.name.split(".")[0]
                        usage.aliases[head] = head
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, "__main__", "")
            if module is None or not (module == library.name or module.startswith(prefix)):
                continue
            usage.modules.add(module)
            for alias in node.names:
                target = f"{module}.{alias.name}"
                if module == library.name and alias.name in library.public:
                    usage.used.add(alias.name)
                    usage.modules.add(library.public[alias.name])
                usage.aliases[alias.asname or alias.name] = target
                usage.aliases.setdefault(alias.name, target)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            dotted = _dotted_name(node)
            resolved = usage.resolve(dotted) if dotted else None
            if resolved and resolved.startswith(prefix):
                name = resolved[len(prefix) :].split(".")[0]
                if name in library.public:
                    usage.used.add(name)
                    usage.modules.add(library.public[name])
    return usage


def dependency_key(example: Path, library: Library, *extra: str) -> str:
    """A hash of the library files `example` depends on (and of `extra` strings).

    It changes when a module the example imports, or one of theirs, is edited; editing a module
    the example does not reach leaves it unchanged. The example file itself is not part of the
    key: mkdocs-gallery already re-runs an example whose own file changed.
    """
    usage = example_usage(example.read_text(), library)
    digest = hashlib.sha256()
    for path in sorted(library.closure(usage.modules)):
        digest.update(str(path.relative_to(library.root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    for name in sorted(usage.used):
        digest.update(f"{name}={library.public[name]}".encode() + b"\0")
    for value in extra:
        digest.update(value.encode() + b"\0")
    return digest.hexdigest()


def _dotted_name(node: ast.expr) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _absolute(node: ast.ImportFrom, importer: str, package: str) -> str | None:
    """The absolute module of a `from X import ...` written in module `importer`."""
    if node.level == 0:
        return node.module
    base = importer.split(".")[: -node.level]
    if not base and not package:
        return None
    return ".".join([*base, node.module] if node.module else base)


def _imported_modules(node: ast.AST, importer: str, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        module = _absolute(node, importer, package)
        if module is None:
            return []
        # `from . import x` imports the submodule x; `from .m import Name` imports m.
        return [module, *(f"{module}.{alias.name}" for alias in node.names)]
    return []
