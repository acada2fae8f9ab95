"""The modules of skmia.attacks import one another without a cycle, and the names that
moved between them still work."""

import ast
from pathlib import Path

import skmia.attacks

PACKAGE = Path(skmia.attacks.__file__).parent


def import_graph():
    """module -> the sibling modules it imports, at any depth (functions included)."""
    graph = {}
    for path in sorted(PACKAGE.glob("*.py")):
        name = path.stem
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    imported.add(node.module)
                else:  # from . import x
                    imported.update(alias.name for alias in node.names)
        graph[name] = imported & {p.stem for p in PACKAGE.glob("*.py")}
    return graph


def find_cycle(graph):
    """A cycle of the graph as a list of modules, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_inside_attacks():
    graph = import_graph()
    assert graph["_signals"] >= {"_query", "_perturb", "_augment", "_reference_signals"}
    assert find_cycle(graph) is None, find_cycle(graph)
    # the leaves import no attack
    assert graph["_query"] == set() and graph["_perturb"] == set()
    assert graph["_augment"] == set()
    assert graph["_base"] <= {"_signals", "_query", "_perturb", "_augment",
                              "_reference_signals"}


def test_the_checker_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_moved_names_keep_working():
    from skmia.attacks import label_only_signals
    from skmia.attacks._base import _CalibratedAttack, _reference_thresholds
    from skmia.attacks._label_only import LabelOnlyAttack
    from skmia.attacks._label_only import label_only_signals as from_label_only
    from skmia.attacks._perturb import label_only_signals as from_perturb

    assert label_only_signals is from_label_only is from_perturb
    assert issubclass(LabelOnlyAttack, _CalibratedAttack)
    assert callable(_reference_thresholds)
