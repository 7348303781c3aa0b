"""Griffe extension for the API reference: reStructuredText habits of docstrings, in Markdown.

The library's docstrings name other objects the Sphinx way (``:class:`~gradmanip.rl.Trainer```,
``:func:`make_collector```) and introduce literal blocks with ``::``. Markdown has neither, so
this extension rewrites each role to inline code before mkdocstrings renders it (``~`` keeps the
last component, as in Sphinx) and a line-final ``::`` before an indented block to ``:``.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|obj|exc):`(~?)([^`]+)`")
LITERAL_BLOCK = re.compile(r"(?<=\S)::\n(?=\n[ \t]+\S)")


def replace_roles(text: str) -> str:
    """``:role:`~a.b.C``` -> ```C```, ``:role:`a.b.C``` -> ```a.b.C```."""

    def code(match: re.Match[str]) -> str:
        target = match.group(2).strip()
        return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"

    return LITERAL_BLOCK.sub(":\n", ROLE.sub(code, text))


class SphinxRoles(Extension):
    """Rewrite Sphinx cross-reference roles of every loaded docstring."""

    def on_object(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = replace_roles(obj.docstring.value)
