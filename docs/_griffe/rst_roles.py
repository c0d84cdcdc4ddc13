"""A griffe extension for the API reference: Sphinx roles in docstrings as code spans.

The docstrings of ``theseus_cli/plugin/`` are Google style with a few Sphinx roles
(``:class:`Stage```, ``:meth:`~theseus_cli.plugin.StageContext.train```). Markdown
has no roles, so mkdocstrings would print them as written; this extension turns each
into a code span (``Stage``, ``train``: the last component where the target starts
with ``~``, as Sphinx shows it). It changes only the text the documentation site
renders, never the source. mkdocs.yml loads it by path.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(
    r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):`(~?)([^`]+)`"
)


def _role(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def strip_roles(text: str) -> str:
    """``text`` with every Sphinx cross-reference role replaced by a code span."""
    return _ROLE.sub(_role, text)


class RstRoles(griffe.Extension):
    """Rewrite the Sphinx roles of every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = strip_roles(obj.docstring.value)
