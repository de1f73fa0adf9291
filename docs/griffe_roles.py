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
"""The library's packages: a role whose target starts with one of them must resolve."""

ROLE = re.compile(r":(?:py:)?(?:func|mod|class|data|meth|attr|obj|exc|const):`(?P<target>[^`]+)`")
"""A Sphinx role with its target (``:func:`x```, ``:py:class:`x```)."""

_log = logging.getLogger("mkdocs.plugins.griffe_roles")
_ROOT = Path(__file__).resolve().parents[1]
_LOOKUP_ERRORS = (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError)


def _lookup(collection: griffe.ModulesCollection, path: str) -> griffe.Object | griffe.Alias | None:
    """The object at dotted ``path`` (through re-exports and inherited members), or None."""
    first, *rest = path.split(".")
    try:
        found = collection.members[first]
        for part in rest:
            found = found.all_members[part] if found.is_class else found.members[part]
        # An alias to another of the library's names must lead somewhere.
        if found.is_alias and found.target_path.split(".", 1)[0] in PACKAGES:
            found.final_target  # noqa: B018  (resolves the alias chain or raises)
    except _LOOKUP_ERRORS:
        return None
    return found


def _is_external(collection: griffe.ModulesCollection, scopes: list[str], root: str) -> bool:
    """Whether ``root`` is a builtin or a name imported from outside the library."""
    if hasattr(builtins, root):
        return True
    for scope in scopes:
        try:
            member = collection.get_member(f"{scope}.{root}")
        except _LOOKUP_ERRORS:
            continue
        return member.is_alias and member.target_path.split(".", 1)[0] not in PACKAGES
    # Not imported where it is cited (``torch.Tensor`` in a theory docstring): outside the
    # library unless it names one of the library's packages.
    return root not in PACKAGES


def _scopes(obj: griffe.Object) -> list[str]:
    """The paths a bare name is looked up in: the object (if a class), then its parents."""
    scopes = []
    current: Any = obj if obj.is_class or obj.is_module else obj.parent
    while current is not None:
        scopes.append(current.path)
        current = current.parent
    return scopes


class SphinxRoles(griffe.Extension):
    """Rewrites Sphinx roles into autorefs references once each package is loaded."""

    def __init__(self) -> None:
        super().__init__()
        self._collection: griffe.ModulesCollection | None = None

    def _universe(self) -> griffe.ModulesCollection:
        """All three packages, loaded once, without this extension: what a target may name."""
        if self._collection is None:
            self._collection = griffe.ModulesCollection()
            loader = griffe.GriffeLoader(search_paths=[_ROOT], modules_collection=self._collection)
            for package in PACKAGES:
                loader.load(package)
        return self._collection

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if pkg.name in PACKAGES:
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
            candidates = [target] if root in PACKAGES else [f"{s}.{target}" for s in scopes]
            for candidate in candidates:
                found = _lookup(collection, candidate)
                if found is not None:
                    identifier = html.escape(found.path)
                    return f'<autoref identifier="{identifier}" optional>{code}</autoref>'
            if root not in PACKAGES and _is_external(collection, scopes, root):
                return code
            where = f"{obj.relative_filepath}:{lineno}" if lineno else obj.path
            _log.warning("%s: %s names nothing in %s (docstring of %s)", where, match[0],
                         "/".join(PACKAGES), obj.path)
            return f"[{code}][{html.escape(target)}]"

        return ROLE.sub(replace, text)
