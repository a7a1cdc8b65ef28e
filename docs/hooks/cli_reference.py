"""mkdocs hook: writes the command line's own ``--help`` text into docs/cli.md at build time, so
the CLI reference is generated from the parser (``deeplab_keras.cli.build_parser``) and cannot
fall behind it. Building the parser imports no TensorFlow.

The page marks the place with ``<!-- cli-help -->``; a page without the marker, or a parser that
does not build, fails the build."""
import argparse
import os
import sys

MARKER = "<!-- cli-help -->"
PAGE = "cli.md"


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
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if root not in sys.path:  # document the checkout being built, not another installed copy
        sys.path.insert(0, root)
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: the same text everywhere
    from deeplab_keras.cli import build_parser
    parser = build_parser()
    parts = [f"### `deeplab-keras`\n\n```text\n{parser.format_help().rstrip()}\n```\n"]
    parts.extend(_sections(parser, "deeplab-keras", 3))
    return "\n".join(parts)


def on_page_markdown(markdown, page, config, files, **kwargs):
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"docs/{PAGE} lost its {MARKER} marker: put it back where the generated "
                         "command reference belongs")
    return markdown.replace(MARKER, cli_reference())
