"""Griffe extension for the documentation site: Sphinx roles in docstrings as cross-references.

The docstrings cite names with Sphinx roles (:func:`theory.predict_limit`, :class:`LemmaResult`,
...), which mkdocstrings-python does not read. This extension resolves each role whose target
is one of this library's names and rewrites it into an autorefs reference:

- the target exists (absolute, from ``theory``/``numerics``/``proofs``, or a name seen from
  the docstring's object, its class, module or enclosing packages): an *optional* autorefs
  reference, a link where the site renders the object and plain code where it does not (private
  helpers, members of submodules that ``__all__`` does not export);
- the target names nothing: a warning naming the file, the line and the target, plus a
  *required* reference, so that ``mkdocs build --strict`` fails;
- the target is outside the library (``torch.Tensor``, ``np.ndarray``, builtins): plain code,
  since no inventory of those projects is available offline.

Every docstring of the three packages is checked, rendered on the site or not.
"""

from __future__ import annotations

import builtins
import html
import logging
import re
from pathlib import Path
from typing import Any

import griffe

PACKAGES = ("theory", "numerics", "proofs")
"""The library's packages (the default of ``packages``): a role whose target starts with one of
them must resolve."""

ROLE = re.compile(r":(?:py:)?(?:func|mod|class|data|meth|attr|obj|exc|const):`(?P<target>[^`]+)`")
"""A Sphinx role with its target (``:func:`x```, ``:py:class:`x```)."""

_log = logging.getLogger("mkdocs.plugins.griffe_roles")
ROOT = Path(__file__).resolve().parents[1]
"""The repository root, where the packages are found (the default of ``root``)."""
_LOOKUP_ERRORS = (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError)


def _lookup(collection: griffe.ModulesCollection, path: str,
            packages: tuple[str, ...]) -> griffe.Object | griffe.Alias | None:
    """The object at dotted ``path`` (through re-exports and inherited members), or None."""
    first, *rest = path.split(".")
    try:
        found = collection.members[first]
        for part in rest:
            found = found.all_members[part] if found.is_class else found.members[part]
        # An alias to another of the library's names must lead somewhere.
        if found.is_alias and found.target_path.split(".", 1)[0] in packages:
            found.final_target  # noqa: B018  (resolves the alias chain or raises)
    except _LOOKUP_ERRORS:
        return None
    return found


def _is_external(collection: griffe.ModulesCollection, scopes: list[str], target: str,
                 packages: tuple[str, ...]) -> bool:
    """Whether ``target`` is a builtin or starts with a name from outside the library."""
    root, dot, _ = target.partition(".")
    if hasattr(builtins, root):
        return True
    for scope in scopes:
        try:
            member = collection.get_member(f"{scope}.{root}")
        except _LOOKUP_ERRORS:
            continue
        return member.is_alias and member.target_path.split(".", 1)[0] not in packages
    # A dotted name whose root is not imported where it is cited (``torch.Tensor`` in a theory
    # docstring) is outside the library unless the root is one of its packages; a bare name
    # that is neither a builtin nor found in scope names nothing.
    return bool(dot) and root not in packages


def _public_paths(collection: griffe.ModulesCollection,
                  packages: tuple[str, ...]) -> dict[str, str]:
    """Canonical path -> ``package.name`` for every name a package's ``__all__`` exports; a
    name exported by two packages keeps the package it is defined in."""
    public: dict[str, str] = {}
    for package in packages:
        module = collection.members[package]
        for name in module.exports or ():
            try:
                canonical = module.members[str(name)].canonical_path
            except _LOOKUP_ERRORS:
                continue
            if canonical not in public or canonical.startswith(f"{package}."):
                public[canonical] = f"{package}.{name}"
    return public


def _scopes(obj: griffe.Object) -> list[str]:
    """The paths a bare name is looked up in: the object (if a class), then its parents."""
    scopes = []
    current: Any = obj if obj.is_class or obj.is_module else obj.parent
    while current is not None:
        scopes.append(current.path)
        current = current.parent
    return scopes


class SphinxRoles(griffe.Extension):
    """Rewrites Sphinx roles into autorefs references once each package is loaded.

    Args:
        packages: the packages whose names a role may cite, and whose docstrings are rewritten.
        root: the folder the packages are loaded from.
    """

    def __init__(self, packages: tuple[str, ...] | list[str] = PACKAGES,
                 root: str | Path = ROOT) -> None:
        super().__init__()
        self.packages = tuple(packages)
        self.root = Path(root)
        self._collection: griffe.ModulesCollection | None = None
        self._public: dict[str, str] = {}

    def _universe(self) -> griffe.ModulesCollection:
        """The packages, loaded once, without this extension: what a target may name."""
        if self._collection is None:
            self._collection = griffe.ModulesCollection()
            loader = griffe.GriffeLoader(search_paths=[self.root],
                                         modules_collection=self._collection)
            for package in self.packages:
                loader.load(package)
            self._public = _public_paths(self._collection, self.packages)
        return self._collection

    def identifier(self, found: griffe.Object | griffe.Alias) -> str:
        """The path the site renders ``found`` under: through the package that exports it or
        the class it belongs to (``numerics.models.full.FullInductionHeadModel.offsets`` ->
        ``numerics.FullInductionHeadModel.offsets``), else its canonical path."""
        try:
            canonical = found.canonical_path
        except _LOOKUP_ERRORS:
            return found.path
        prefix = canonical
        while prefix:
            if prefix in self._public:
                return self._public[prefix] + canonical[len(prefix):]
            prefix = prefix.rpartition(".")[0]
        return canonical

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if pkg.name in self.packages:
            self._rewrite_tree(pkg)

    def _rewrite_tree(self, obj: griffe.Object) -> None:
        if obj.docstring is not None:
            obj.docstring.value = self.rewrite(obj, obj.docstring.value, obj.docstring.lineno)
        for member in obj.members.values():
            if not member.is_alias and (member.is_module or member.is_class or obj.is_module
                                        or obj.is_class):
                self._rewrite_tree(member)

    def rewrite(self, obj: griffe.Object, text: str, lineno: int | None) -> str:
        """``text`` (the docstring of ``obj``) with each role replaced by its reference."""
        collection = self._universe()
        scopes = _scopes(obj)

        def replace(match: re.Match[str]) -> str:
            written = re.sub(r"\s+", "", match["target"])  # a target may wrap across lines
            target = written.lstrip("~!.").removesuffix("()")
            shown = target.rsplit(".", 1)[-1] if written.startswith("~") else target
            code = f"<code>{html.escape(shown)}</code>"
            if written.startswith("!"):
                return code
            root = target.split(".", 1)[0]
            candidates = [target] if root in self.packages else [f"{s}.{target}" for s in scopes]
            for candidate in candidates:
                found = _lookup(collection, candidate, self.packages)
                if found is not None:
                    identifier = html.escape(self.identifier(found))
                    return f'<autoref identifier="{identifier}" optional>{code}</autoref>'
            if root not in self.packages and _is_external(collection, scopes, target,
                                                          self.packages):
                return code
            where = f"{obj.relative_filepath}:{lineno}" if lineno else obj.path
            _log.warning("%s: %s names nothing in %s (docstring of %s)", where, match[0],
                         "/".join(self.packages), obj.path)
            return f"[{code}][{html.escape(target)}]"

        return ROLE.sub(replace, text)
