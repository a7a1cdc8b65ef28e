"""mkdocs hook: the reference pages are generated from the code when the site is built, so
they cannot fall behind it.

- docs/cli.md, at ``<!-- cli-help -->``: every command's own ``--help`` text, from
  ``deeplab_keras.cli.build_parser`` (building the parser imports no TensorFlow).
- docs/api.md, at ``<!-- api-reference -->``: one mkdocstrings ``:::`` block per public name.
  ``deeplab_keras/__init__.py`` exports its names lazily (``_LAZY``: name -> defining module, or
  ``None`` for a submodule) so that ``import deeplab_keras`` stays free of TensorFlow, which a
  static reader cannot follow; ``__all__`` and ``_LAZY`` are read from the source with ``ast``
  (nothing imported) and each name is documented under the module that defines it. A name added
  to ``__all__`` appears without editing the docs.

A page that lost its marker, a parser that does not build or a public name that cannot be placed
fails the build."""
import argparse
import ast
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INIT = os.path.join(ROOT, "deeplab_keras", "__init__.py")


def _subcommands(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def _sections(parser, prefix, level):
    out = []
    for name, sub in _subcommands(parser).items():
        title = f"{prefix} {name}"
        out.append(f"{'#' * level} `{title}`\n\n```text\n{sub.format_help().rstrip()}\n```\n")
        out.extend(_sections(sub, title, level + 1))
    return out


def cli_reference():
    if ROOT not in sys.path:  # document the checkout being built, not another installed copy
        sys.path.insert(0, ROOT)
    from deeplab_keras.cli import build_parser
    parser = build_parser()
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: the same text everywhere
    try:
        parts = [f"### `deeplab-keras`\n\n```text\n{parser.format_help().rstrip()}\n```\n"]
        parts.extend(_sections(parser, "deeplab-keras", 3))
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    return "\n".join(parts)


def public_api(path=INIT):
    """``[(name, defining module or None for a submodule)]`` in ``__all__`` order, read
    statically from the package's ``__init__.py``."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("__all__", "_LAZY"):
                try:
                    values[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    pass  # not a literal: reported below
    missing = {"__all__", "_LAZY"} - set(values)
    if missing:
        raise ValueError(f"{path} no longer defines {sorted(missing)} as literals: "
                         "docs/hooks/api_reference.py reads the public API from them")
    lazy, names = values["_LAZY"], values["__all__"]
    out = []
    for name in names:
        if name == "__version__":
            continue
        if name not in lazy:
            raise ValueError(f"deeplab_keras.__all__ names {name!r}, which _LAZY does not map to "
                             "a module: add it to _LAZY")
        out.append((name, lazy[name]))
    return out


def api_markdown(path=INIT):
    groups = {}
    for name, module in public_api(path):
        groups.setdefault(module, []).append(name)
    parts = []
    for module, names in groups.items():
        if module is None:
            continue
        parts.append(f"## `{module}`\n")
        parts.extend(f"::: {module}.{name}\n    options:\n      heading_level: 3\n" for name in names)
    subs = groups.get(None, [])
    if subs:
        parts.append("## Submodules\n")
        parts.extend(f"::: deeplab_keras.{name}\n    options:\n      heading_level: 3\n"
                     "      show_submodules: false\n" for name in subs)
    return "\n".join(parts)


#: page -> (marker, what replaces it)
GENERATED = {"cli.md": ("<!-- cli-help -->", cli_reference),
             "api.md": ("<!-- api-reference -->", api_markdown)}


def on_page_markdown(markdown, page, config, files, **kwargs):
    if page.file.src_uri not in GENERATED:
        return markdown
    marker, generate = GENERATED[page.file.src_uri]
    if marker not in markdown:
        raise ValueError(f"docs/{page.file.src_uri} lost its {marker} marker: put it back where "
                         "the generated reference belongs")
    return markdown.replace(marker, generate())


_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|obj|exc):<code>(~?)([^<]*)</code>")


def strip_sphinx_roles(html):
    """The docstrings cross-reference in Sphinx style (``:func:`build_model```,
    ``:class:`~pkg.mod.Name```), which Markdown renders as ``:func:<code>build_model</code>``:
    keep the code, drop the role (``~`` keeps the last dotted component, as in Sphinx)."""
    return _ROLE.sub(lambda m: f"<code>{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}</code>", html)



def on_page_content(html, page, config, files, **kwargs):
    return strip_sphinx_roles(html) if page.file.src_uri == "api.md" else html
