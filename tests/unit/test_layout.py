"""The package reads in layers: no import cycle among gcircus's modules (imports inside
functions count: a lazy import is still a dependency), and a short top level."""
import ast
import os

import gcircus

PACKAGE_DIR = os.path.dirname(gcircus.__file__)


def _modules():
    modules = {}
    for directory, _, files in os.walk(PACKAGE_DIR):
        for filename in files:
            if filename.endswith(".py"):
                path = os.path.join(directory, filename)
                relative = os.path.relpath(path, os.path.dirname(PACKAGE_DIR))[:-3]
                name = relative.replace(os.sep, ".")
                if name.endswith(".__init__"):
                    name = name[:-len(".__init__")]
                modules[name] = path
    return modules


def _imported(module, path, modules):
    """The gcircus modules `module` imports, anywhere in its body."""
    is_package = path.endswith("__init__.py")
    found = set()
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".") if is_package else module.split(".")[:-1]
                parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            names = [base] + ["%s.%s" % (base, alias.name) for alias in node.names]
        for name in names:
            # a package's own submodules importing it (for its re-exports) is no cycle
            if name in modules and name != module and not module.startswith(name + "."):
                found.add(name)
    return found


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, result, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        result.append(sorted(component))
    return result


def test_no_import_cycle():
    modules = _modules()
    graph = {name: _imported(name, path, modules) for name, path in modules.items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_top_level_stays_short():
    top = [name for name in os.listdir(PACKAGE_DIR) if name.endswith(".py")]
    assert len(top) <= 16, sorted(top)
