"""mkdocs hook: the API reference lists exactly the package's public names.

``deeplab_keras/__init__.py`` exports its names lazily (``_LAZY``: name -> defining module, or
``None`` for a submodule) so that ``import deeplab_keras`` stays free of TensorFlow; a static
reader cannot follow that. This hook reads ``__all__`` and ``_LAZY`` from the source with ``ast``
(nothing is imported) and replaces the ``<!-- api-reference -->`` marker in docs/api.md with one
mkdocstrings ``:::`` block per public name, grouped by the module that defines it. A name added to
``__all__`` appears in the reference without editing the docs; a name whose module cannot be
found fails the build."""
import ast
import os
import re

MARKER = "<!-- api-reference -->"
PAGE = "api.md"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INIT = os.path.join(ROOT, "deeplab_keras", "__init__.py")


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


def on_page_markdown(markdown, page, config, files, **kwargs):
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"docs/{PAGE} lost its {MARKER} marker: put it back where the generated "
                         "API reference belongs")
    return markdown.replace(MARKER, api_markdown())


_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|obj|exc):<code>(~?)([^<]*)</code>")


def strip_sphinx_roles(html):
    """The docstrings cross-reference in Sphinx style (``:func:`build_model```,
    ``:class:`~pkg.mod.Name```), which Markdown renders as ``:func:<code>build_model</code>``:
    keep the code, drop the role (``~`` keeps the last dotted component, as in Sphinx)."""
    return _ROLE.sub(lambda m: f"<code>{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}</code>", html)


def on_page_content(html, page, config, files, **kwargs):
    return strip_sphinx_roles(html) if page.file.src_uri == PAGE else html
