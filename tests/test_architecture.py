"""Package structure: no import cycles among deeplab_keras's modules (module-level and
function-level imports and ``importlib.import_module("deeplab_keras...")`` string literals alike,
read from the source with ast), no package-level cycle between evaluation and export, the models
never reach up to the weights layer (hub), and the library never imports deeplab_keras.commands."""
import ast
import os

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "deeplab_keras")
PACKAGE = "deeplab_keras"


def module_files():
    out = {}
    for folder, _, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
                out[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = path
    return out


def imports_of(name, path, modules):
    """Package modules that ``name`` imports anywhere in its source, function bodies included.
    ``from pkg import sub`` counts as a dependency on ``pkg.sub`` (Python runs ``pkg/__init__``
    on the way, but that is the package's own structure, not a dependency of the importer)."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    is_pkg = path.endswith("__init__.py")
    found = set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Call) and _is_import_module(node.func) and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            targets = [node.args[0].value]  # a dynamic import by name is an edge too
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # ``from pkg import sub`` depends on the submodule; ``from pkg import name`` on pkg
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod
                       for a in node.names]
        for t in targets:
            # the deepest package module the import names
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t and t.startswith(PACKAGE) and t != name and t != PACKAGE:
                found.add(t)
    return found


def _is_import_module(func):
    """``importlib.import_module``, ``_importlib.import_module``, ``import_module`` or
    ``__import__``."""
    if isinstance(func, ast.Attribute):
        return func.attr == "import_module"
    return isinstance(func, ast.Name) and func.id in ("import_module", "__import__")


def graph():
    modules = module_files()
    return {m: imports_of(m, p, modules) for m, p in modules.items()}


def find_cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    cycles = find_cycles(graph())
    assert not cycles, "import cycles among deeplab_keras modules: " + "; ".join(
        " <-> ".join(c) for c in cycles)


def test_library_never_imports_commands():
    bad = {m: sorted(d for d in deps if d.startswith(f"{PACKAGE}.commands"))
           for m, deps in graph().items()
           if not m.startswith(f"{PACKAGE}.commands") and m != f"{PACKAGE}.cli"}
    bad = {m: d for m, d in bad.items() if d}
    assert not bad, f"library modules import the CLI: {bad}"


def test_cycle_finder_finds_a_planted_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_import_parser_sees_function_level_and_relative_imports(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from deeplab_keras.zoo import get_preset\n"
                   "from . import weights\n")
    modules = {"deeplab_keras.zoo": "", "deeplab_keras.weights": "", "deeplab_keras.x": ""}
    assert imports_of("deeplab_keras.x", str(src), modules) == {"deeplab_keras.zoo",
                                                              "deeplab_keras.weights"}


def package_of(module):
    """``deeplab_keras.export.api`` -> ``deeplab_keras.export`` (top-level modules: themselves)."""
    return ".".join(module.split(".")[:2])


def test_no_package_cycle_between_evaluation_and_export():
    edges = graph()

    def reaches(a, b):
        return any(package_of(d) == b for m, deps in edges.items() if package_of(m) == a
                   for d in deps)
    both = [p for p in (("evaluation", "export"), ("export", "evaluation"))
            if reaches(f"{PACKAGE}.{p[0]}", f"{PACKAGE}.{p[1]}")]
    assert len(both) < 2, "deeplab_keras.evaluation and deeplab_keras.export import each other"


def test_models_never_reach_up_to_weights():
    above = (f"{PACKAGE}.hub", f"{PACKAGE}.builders", f"{PACKAGE}.importers", f"{PACKAGE}.download")
    bad = {m: sorted(d for d in deps if d.startswith(above))
           for m, deps in graph().items() if m.startswith(f"{PACKAGE}.models")}
    bad = {m: d for m, d in bad.items() if d}
    assert not bad, f"models/ imports the weights layer above it: {bad}"


def test_import_parser_counts_dynamic_imports(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("import importlib\n"
                   "def f():\n    importlib.import_module('deeplab_keras.zoo')\n"
                   "def g():\n    __import__('deeplab_keras.weights')\n"
                   "def h(name):\n    importlib.import_module(name)\n")
    modules = {"deeplab_keras.zoo": "", "deeplab_keras.weights": "", "deeplab_keras.x": ""}
    assert imports_of("deeplab_keras.x", str(src), modules) == {"deeplab_keras.zoo",
                                                              "deeplab_keras.weights"}
    # and a cycle closed only by such a call is found
    (tmp_path / "a.py").write_text("import importlib\n"
                                   "def f():\n    importlib.import_module('deeplab_keras.b')\n")
    (tmp_path / "b.py").write_text("from deeplab_keras import a\n")
    mods = {"deeplab_keras.a": str(tmp_path / "a.py"), "deeplab_keras.b": str(tmp_path / "b.py")}
    edges = {m: imports_of(m, p, mods) for m, p in mods.items()}
    assert find_cycles(edges) == [["deeplab_keras.a", "deeplab_keras.b"]]
