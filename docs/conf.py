"""Sphinx configuration for dbqueue's documentation: `make docs` builds it.

The pages are Markdown (MyST), so the same files read well on GitHub. The API
reference comes from the docstrings by autodoc, which imports dbqueue, and
so needs Django set up first: a minimal in-memory configuration is enough,
since nothing touches a database at import time.

The settings reference is generated from the ``Settings`` class in
dbqueue/conf.py by the ``dbqueue-settings`` directive below: each
``DBQUEUE_*`` setting with its type, its default and the comments written
above and beside it, so a new setting is documented where it is defined.
"""

from __future__ import annotations

import ast
import inspect
import io
import re
import sys
import tokenize
from pathlib import Path
from types import MappingProxyType
from typing import Any

import django
from django.conf import settings as django_settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

if not django_settings.configured:
    django_settings.configure(
        SECRET_KEY="docs-only",  # noqa: S106  (never serves a request)
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.admin",
            "django.contrib.messages",
            "django.contrib.sessions",
            "dbqueue",
        ],
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
        },
        USE_TZ=True,
    )
    django.setup()

project = "dbqueue"
author = "the dbqueue developers"
copyright = "the dbqueue developers"

extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Links such as [retries](tasks.md#retries) resolve to the heading's slug.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

html_theme = "alabaster"
html_title = "dbqueue"
html_theme_options = {"description": "Django's database as its task queue"}

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_default_options = {"show-inheritance": False}
add_module_names = False

# Names outside dbqueue cannot be linked without intersphinx inventories,
# which need the network; nitpicky mode checks dbqueue's own references.
# Dotted names from elsewhere (logging.LoggerAdapter, django.db...) and the
# short names of typing and the standard library are let through.
nitpick_ignore_regex = [
    (r"py:.*", r"(?!dbqueue\.)\w+\..*"),
    (r"py:class", r"(Any|Callable|Sequence|Mapping|Iterable|Collection|Iterator)"),
    (r"py:class", r"(P|R|T|ParamSpec|TypeVar|QuerySet|Task|TaskResult)"),
    (r"py:class", r"(Exception|LookupError|TypeError|ValueError|BaseException)"),
    (r"py:class", r"(ImproperlyConfigured|Signal)"),
    (r"py:class", r"(\w+\.)?(timedelta|datetime|UUID|time)"),
]


def _comment_lines(source: str) -> dict[int, str]:
    """Return each line's comment (without '#'), by 1-based line number."""
    comments = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    return comments


def _shown_default(value: Any) -> str:
    if isinstance(value, MappingProxyType):
        value = dict(value)
    return repr(value)


def settings_entries() -> list[tuple[str, str, str, str, str]]:
    """Return (name, type, default, unit, description) for every DBQUEUE_* setting.

    The description is the comment block right above a setting; the settings
    after it share that block when it names them (POLL_INTERVAL_MAX shares
    POLL_INTERVAL's) or they start with the same word (RETAIN_FAILED shares
    RETAIN_SUCCEEDED's). A comment on the setting's own lines is its unit,
    or its whole description when it has no block.
    """
    from dbqueue import conf

    source = inspect.getsource(conf.Settings)
    comments = _comment_lines(source)
    lines = source.splitlines()
    entries = []
    block: list[str] = []
    owner = ""
    previous_end = 0
    for node in ast.parse(source).body[0].body:  # type: ignore[attr-defined]
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            block, previous_end = [], node.end_lineno or 0
            continue
        name = node.target.id
        above = []
        line = node.lineno - 1
        while line > previous_end and lines[line - 1].strip().startswith("#"):
            above.insert(0, comments[line])
            line -= 1
        if above:
            block, owner = above, name
        elif not (
            re.search(rf"\b{name}\b", " ".join(block))
            or name.split("_")[0] == owner.split("_")[0]
        ):
            block = []
        beside = " ".join(
            comments[n]
            for n in range(node.lineno, (node.end_lineno or node.lineno) + 1)
            if n in comments
        )
        text = " ".join(block)
        if not text and beside:
            text, beside = beside[0].upper() + beside[1:].rstrip(".") + ".", ""
        entries.append(
            (
                "DBQUEUE_" + name,
                ast.unparse(node.annotation),
                _shown_default(getattr(conf.Settings, name)),
                _literals(beside),
                _literals(text),
            )
        )
        previous_end = node.end_lineno or node.lineno
    return entries


def _literals(text: str) -> str:
    """Turn the comments' `code` into reST's ``code``, escaping the other markup."""
    parts = re.split(r"(?<!`)`([^`]+)`(?!`)", text)
    return "".join(
        f"``{part}``" if index % 2 else re.sub(r"([*_|\\])", r"\\\1", part)
        for index, part in enumerate(parts)
    )


def setup(app: Any) -> dict[str, Any]:
    from docutils import nodes
    from docutils.parsers.rst import Directive
    from docutils.statemachine import StringList
    from sphinx.util import logging

    logger = logging.getLogger(__name__)

    class SettingsDirective(Directive):
        """``dbqueue-settings``: one ``setting`` entry per DBQUEUE_* setting."""

        def run(self) -> list[Any]:
            rst = []
            for name, annotation, default, unit, text in settings_entries():
                if not text:
                    logger.warning(
                        "%s has no comment in dbqueue/conf.py to document it", name
                    )
                rst += [
                    f".. setting:: {name}",
                    "",
                    f"   | Default: ``{default}``" + (f", in {unit}" if unit else ""),
                    f"   | Type: ``{annotation}``",
                    "",
                    f"   {text}",
                    "",
                ]
            container = StringList(rst, source="dbqueue/conf.py")
            section = nodes.container()
            self.state.nested_parse(container, self.content_offset, section)
            return section.children

    app.add_object_type(
        "setting",
        "setting",
        objname="setting",
        indextemplate="pair: %s; setting",
    )
    app.add_directive("dbqueue-settings", SettingsDirective)

    def check_public_api(app: Any, env: Any) -> None:
        """Warn about a name of dbqueue.__all__ that the API reference leaves out."""
        import dbqueue

        documented = set(env.domaindata["py"]["objects"])
        for name in dbqueue.__all__:
            homes = {f"dbqueue.{name}", f"{dbqueue._HOMES.get(name)}.{name}"}
            if not homes & documented:
                logger.warning(
                    "dbqueue.%s is public (in __all__) but not in docs/reference/api.md",
                    name,
                )

    app.connect("env-check-consistency", check_public_api)
    return {"parallel_read_safe": True}
