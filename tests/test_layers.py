"""The package's import structure: no module imports one of a higher layer, and no two modules
import each other, directly or round a circle (imports inside functions count too)."""

import ast
import pathlib

import difffake_ray

ROOT = pathlib.Path(difffake_ray.__file__).parent

# lowest first; a module may import its own layer's modules and those of layers below it
LAYERS = [
    ("foundation", ("registry", "text", "schema", "submission", "storage", "config", "runtime", "figures")),
    ("concepts", ("datasets", "faces", "preprocess", "heads", "pseudofake", "calibration", "metrics", "adm",
                  "pretrained")),
    ("models", ("backbone", "embed")),
    ("training and bundles", ("train", "bundle")),
    ("stages", ("pipeline", "verify")),
]


def module_names():
    names = {}
    for path in ROOT.rglob("*.py"):
        parts = ("difffake_ray",) + path.relative_to(ROOT).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = (path, parts[-1] == "__init__")
    return names


def imports(names):
    """module -> the package's modules it imports."""
    graph = {}
    for name, (path, is_package) in names.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in names else module for a in node.names]
            for t in targets:
                while t not in names and "." in t:
                    t = t.rsplit(".", 1)[0]
                if t in names and t not in (name, "difffake_ray"):
                    deps.add(t)
        graph[name] = deps
    return graph


def layer_of(module):
    top = module.split(".")[1] if "." in module else ""
    for i, (_, tops) in enumerate(LAYERS):
        if top in tops:
            return i
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in {__file__}")


def test_every_module_belongs_to_a_layer_and_imports_none_above_it():
    graph = imports(module_names())
    upward = [f"{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})"
              for m, deps in sorted(graph.items()) if m != "difffake_ray" for d in sorted(deps)
              if layer_of(d) > layer_of(m)]
    assert not upward, "\n".join(upward)


def test_no_import_circle():
    graph = imports(module_names())
    circles, state = [], {}

    def visit(m, stack):
        state[m] = "open"
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                circles.append(" -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d, stack + [d])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not circles, "\n".join(circles)
