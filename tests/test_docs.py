"""Issue 18 item 7: a short README and a documentation site (docs/, mkdocs.yml) that describe the
code as it is. Fast and static: no TensorFlow, and mkdocs only for the last test (skipped without
the `docs` extra; .ci/run installs it and builds the site strictly as well)."""
import ast
import glob
import importlib.util
import os
import re
import subprocess
import sys
import unicodedata

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README_LIMIT = 12_000
#: folders of the repository that documentation may name in `code spans` as paths
REPO_DIRS = ("deeplab_keras", "bench", "tests", "zoo", "docs", "export", ".ci")


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def doc_files(repo=REPO):
    """README.md and every Markdown page of the site, as paths relative to the repository."""
    pages = glob.glob(os.path.join(repo, "docs", "**", "*.md"), recursive=True)
    return ["README.md"] + sorted(os.path.relpath(p, repo) for p in pages)


def _without_code(text):
    """Markdown without fenced code blocks (links inside them are examples, not links)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def slug(heading):
    """Anchor of a heading, as mkdocs' toc extension (and GitHub, for these headings) makes it."""
    text = re.sub(r"`|\*", "", heading)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(path):
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*$", _without_code(_read(path)), re.M)}


def broken_links(repo=REPO):
    """``[(file, target, why)]`` for every relative Markdown link whose file (or heading) is missing."""
    out = []
    for rel in doc_files(repo):
        path = os.path.join(repo, rel)
        for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", _without_code(_read(path))):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
                continue  # URLs (http:, mailto:) are not files of ours
            file_part, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            if not os.path.exists(dest):
                out.append((rel, target, "no such file"))
            elif anchor and dest.endswith(".md") and anchor not in anchors(dest):
                out.append((rel, target, f"no heading with anchor #{anchor}"))
    return out


def missing_code_paths(repo=REPO):
    """``[(file, path)]`` for repository paths named in `code spans` (``bench/x.py``,
    ``deeplab_keras/...``, globs too) and dotted ``deeplab_keras.module.name`` references that
    do not exist in the checkout: docs that name moved or deleted code."""
    out = []
    path_re = re.compile(r"`((?:%s)/[^`\s]*)`" % "|".join(re.escape(d) for d in REPO_DIRS))
    dotted_re = re.compile(r"`(deeplab_keras(?:\.\w+)+)")
    for rel in doc_files(repo):
        text = _read(os.path.join(repo, rel))
        for p in path_re.findall(text):
            full = os.path.join(repo, p.rstrip("/"))
            if not (glob.glob(full) if "*" in p else os.path.exists(full)):
                out.append((rel, p))
        for dotted in dotted_re.findall(text):
            if not _resolves(repo, dotted):
                out.append((rel, dotted))
    return out


def _resolves(repo, dotted):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        base = os.path.join(repo, *parts[:cut])
        source = base + ".py" if os.path.isfile(base + ".py") else os.path.join(base, "__init__.py")
        if os.path.isfile(source):
            rest = parts[cut:]
            if not rest:
                return True
            # an attribute: the module (or, for a package, one of its files) must define the name
            sources = [source] + (glob.glob(os.path.join(base, "**", "*.py"), recursive=True)
                                  if source.endswith("__init__.py") else [])
            return any(re.search(r"\b%s\b" % re.escape(rest[0]), _read(s)) for s in sources)
    return False


def nav_pages(repo=REPO):
    """Pages named in mkdocs.yml's nav (read with a regex: no yaml needed)."""
    text = _read(os.path.join(repo, "mkdocs.yml"))
    nav = text[text.index("\nnav:"):]
    return re.findall(r"^\s+-\s+(?:.*?:\s+)?([\w./-]+\.md)\s*$", nav, re.M)


HOOK = os.path.join(REPO, "docs", "hooks", "reference.py")


def _hook():
    spec = importlib.util.spec_from_file_location("_docs_reference_hook", HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_is_short():
    size = len(_read(os.path.join(REPO, "README.md")))
    assert size <= README_LIMIT, (
        f"README.md has {size} characters, over the {README_LIMIT} limit: move the detail into a "
        "page under docs/ and link to it")


def test_links_in_readme_and_docs_reach_existing_files_and_headings():
    assert broken_links() == []


def test_paths_and_modules_named_in_docs_exist():
    assert missing_code_paths() == [], "docs name files or modules that are not in the repository"


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    pages = {os.path.relpath(p, os.path.join(REPO, "docs")) for p in doc_files() if p.startswith("docs")}
    nav = nav_pages()
    assert len(nav) == len(set(nav)), "a page appears twice in mkdocs.yml's nav"
    assert not set(nav) - pages, f"mkdocs.yml's nav names missing pages: {sorted(set(nav) - pages)}"
    assert not pages - set(nav), f"add these pages to mkdocs.yml's nav: {sorted(pages - set(nav))}"


def test_the_checks_find_what_they_look_for(tmp_path):
    """The checks above can fail: a repository with a broken link, a missing anchor, a stale path
    and a stale module name is reported, each of them."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "deeplab_keras").mkdir()
    (tmp_path / "deeplab_keras" / "__init__.py").write_text("")
    (tmp_path / "deeplab_keras" / "real.py").write_text("def there():\n    pass\n")
    (tmp_path / "README.md").write_text("[ok](docs/a.md#title) [gone](docs/b.md) [site](https://x.org/y)\n"
                                        "```\n[in code](nowhere.md)\n```\n")
    (tmp_path / "docs" / "a.md").write_text(
        "# Title\n\n[bad anchor](#nope) [self](#title) `deeplab_keras/real.py` `bench/gone.py`\n"
        "`deeplab_keras.real.there` `deeplab_keras.real.vanished` `deeplab_keras.old_module`\n")
    assert broken_links(str(tmp_path)) == [("README.md", "docs/b.md", "no such file"),
                                           ("docs/a.md", "#nope", "no heading with anchor #nope")]
    assert missing_code_paths(str(tmp_path)) == [
        ("docs/a.md", "bench/gone.py"), ("docs/a.md", "deeplab_keras.real.vanished"),
        ("docs/a.md", "deeplab_keras.old_module")]
    assert slug("Against MLPerf Mobile's int8 DeepLab v3+") == "against-mlperf-mobiles-int8-deeplab-v3"


def test_api_reference_covers_every_public_name():
    hook = _hook()
    init = os.path.join(REPO, "deeplab_keras", "__init__.py")
    with open(init) as f:
        tree = ast.parse(f.read())
    exported = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                    and getattr(n.targets[0], "id", None) == "__all__")
    listed = hook.public_api(init)
    assert [name for name, _ in listed] == [n for n in exported if n != "__version__"]
    page = hook.api_markdown(init)
    for name, module in listed:
        target = f"{module}.{name}" if module else f"deeplab_keras.{name}"
        assert f"::: {target}\n" in page
        assert _resolves(REPO, target), f"dk.{name}: {target} is not in the source"


def test_api_reference_refuses_an_init_it_cannot_read(tmp_path):
    hook = _hook()
    bad = tmp_path / "__init__.py"
    bad.write_text("__all__ = ['segment']\n_LAZY = {}\n")
    with pytest.raises(ValueError, match="'segment', which _LAZY does not map"):
        hook.public_api(str(bad))
    bad.write_text("__all__ = ['segment']\n_LAZY = dict(segment=None)\n")
    with pytest.raises(ValueError, match="as literals"):
        hook.public_api(str(bad))


def test_cli_reference_is_generated_from_the_parser():
    from deeplab_keras.cli import COMMANDS
    text = _hook().cli_reference()
    for name in COMMANDS:
        assert f"### `deeplab-keras {name}`" in text
    assert "#### `deeplab-keras zoo list`" in text and "usage: deeplab-keras predict" in text


def test_cli_reference_needs_no_tensorflow():
    hook = HOOK
    code = ("import importlib.util, sys; s = importlib.util.spec_from_file_location('h', %r); "
            "m = importlib.util.module_from_spec(s); s.loader.exec_module(m); m.cli_reference(); "
            "print('tensorflow' in sys.modules)" % hook)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "False", "building the CLI reference imported TensorFlow"


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None or
                    importlib.util.find_spec("mkdocstrings_handlers") is None,
                    reason='mkdocs not installed (pip install -e ".[docs]")')
def test_site_builds_strictly(tmp_path):
    mkdocs = [sys.executable, "-m", "mkdocs"]
    out = subprocess.run(mkdocs + ["build", "--strict", "--site-dir", str(tmp_path / "site")],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    api = _read(tmp_path / "site" / "api" / "index.html")
    module = dict(_hook().public_api())["DeepLabV3Plus"]  # wherever the builders live now
    assert f'id="{module}.DeepLabV3Plus"' in api and "output_stride" in api


def test_api_reference_drops_sphinx_roles_and_keeps_the_code():
    strip = _hook().strip_sphinx_roles
    html = (":func:<code>build_model</code> and :class:<code>~deeplab_keras.models.deeplab.DeepLab</code>, "
            "not <code>a:b</code>")
    assert strip(html) == "<code>build_model</code> and <code>DeepLab</code>, not <code>a:b</code>"


def setup_extras(repo=REPO):
    """Names of setup.py's extras, read from its source (``"name": [...]`` entries of ``EXTRAS``
    and ``EXTRAS["name"] = ...`` assignments)."""
    text = _read(os.path.join(repo, "setup.py"))
    block = text[text.index("EXTRAS = {"):]
    literal = block[:block.index("\n}") + 2]
    return set(re.findall(r'^\s+"([\w-]+)":\s*\[', literal, re.M)) | set(re.findall(r'EXTRAS\["([\w-]+)"\]\s*=', text))


def test_every_extra_is_documented_in_getting_started():
    extras = setup_extras()
    assert {"all", "dev", "docs", "mobile"} <= extras
    page = _read(os.path.join(REPO, "docs", "getting-started.md"))
    undocumented = sorted(e for e in extras if f"`[{e}]`" not in page)
    assert not undocumented, f"say what these setup.py extras are for in docs/getting-started.md: {undocumented}"


def test_benchmarks_page_lists_every_script_and_result():
    page = _read(os.path.join(REPO, "docs", "benchmarks.md"))
    scripts = [os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "bench", "*.py"))]
    results = [os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "bench", "results", "*.md"))]
    unlisted = sorted(p for p in scripts + results
                      if f"`{p}`" not in page and not p.endswith("benchlib.py"))
    assert not unlisted, f"add to docs/benchmarks.md (command, results file, page): {unlisted}"
