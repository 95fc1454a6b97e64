"""Imports point down only (DESIGN.md "Layers").

vmm -> uapi and the ``kernel`` package itself (kernel.boot), never its
internals; kernel -> uapi, and hyp only from kernel.arch; hyp never up;
hyp.rm -> hyp.gunyah only; hyp.gunyah and hyp.geniezone -> hyp.arch -> hyp.hw
(hyp.arch never imports a hypervisor or the RM); uapi is self-contained.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
LAYERS = ("uapi", "kernel", "hyp", "vmm")

# (importer prefix, allowed import prefixes); the longest matching importer wins.
RULES = [
    ("uapi", ("uapi",)),
    ("vmm", ("vmm", "uapi", "kernel:exact")),
    ("kernel", ("kernel", "uapi")),
    ("kernel.arch", ("kernel", "uapi", "hyp")),
    ("hyp", ("hyp",)),
    ("hyp.hw", ("hyp.hw",)),
    ("hyp.arch", ("hyp.arch", "hyp.hw")),
    ("hyp.gunyah", ("hyp.gunyah", "hyp.arch", "hyp.hw")),
    ("hyp.geniezone", ("hyp.geniezone", "hyp.arch", "hyp.hw")),
    ("hyp.rm", ("hyp.rm", "hyp.gunyah")),
]


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def allowed(importer: str, target: str) -> bool:
    if not any(_within(target, layer) for layer in LAYERS):
        return True  # standard library or third party
    rule = max((r for r in RULES if _within(importer, r[0])), key=lambda r: len(r[0]))
    for prefix in rule[1]:
        if prefix.endswith(":exact"):
            if target == prefix.removesuffix(":exact"):
                return True
        elif _within(target, prefix):
            return True
    return False


def imports(module: str, source: str, is_package: bool) -> list[str]:
    """Absolute names a module imports (relative imports resolved)."""
    package = module if is_package else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            inside = any(_within(base, layer) for layer in LAYERS)
            names += [base] + [f"{base}.{a.name}" for a in node.names if inside]
    return names


def modules():
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            yield ".".join(parts), path


def violations():
    found = []
    for module, path in modules():
        for target in imports(module, path.read_text(), path.name == "__init__.py"):
            if not allowed(module, target):
                found.append(f"{module} imports {target}")
    return found


def test_every_import_points_down():
    assert list(modules()), "no modules found"
    assert violations() == []


@pytest.mark.parametrize(
    ("importer", "target", "ok"),
    [
        ("hyp.gunyah.vcpu", "kernel.syscalls", False),
        ("hyp.gunyah.vcpu", "uapi.linux.gunyah", False),
        ("hyp.gunyah.vcpu", "hyp.hw.cpu", True),
        ("hyp.hw.cpu", "hyp.gunyah.vcpu", False),
        ("hyp.gunyah.vcpu", "hyp.arch.vcpu", True),
        ("hyp.geniezone.vm", "hyp.arch.pgtable", True),
        ("hyp.arch.vcpu", "hyp.hw.cpu", True),
        ("hyp.arch.vcpu", "hyp.gunyah.object", False),
        ("hyp.arch.psci", "hyp.geniezone.vm", False),
        ("hyp.arch.el2", "hyp.rm.vm_mgnt", False),
        ("hyp.arch.el2", "kernel.syscalls", False),
        ("hyp.arch.el2", "vmm.cli", False),
        ("hyp.hw.cpu", "hyp.arch.vcpu", False),
        ("hyp.rm.vm_mgnt", "hyp.gunyah.msgqueue", True),
        ("hyp.rm.vm_mgnt", "hyp.arch.vcpu", False),
        ("hyp.rm.vm_mgnt", "hyp.hw.memory", False),
        ("kernel.gunyah.vm_mgr", "hyp.gunyah.vcpu", False),
        ("kernel.arch.arm64.gunyah_hypercall", "hyp.gunyah.hypercall", True),
        ("vmm.cli", "kernel", True),
        ("vmm.cli", "kernel.gunyah.vm_mgr", False),
        ("vmm.cli", "hyp", False),
        ("uapi.abi.check", "vmm.cli", False),
        ("vmm.cli", "os", True),
    ],
)
def test_rules(importer, target, ok):
    assert allowed(importer, target) is ok


def test_relative_imports_are_resolved():
    assert imports("hyp.hw.cpu", "from ..gunyah import vcpu", False) == [
        "hyp.gunyah",
        "hyp.gunyah.vcpu",
    ]
    assert imports("hyp.hw", "from . import cpu", True) == ["hyp.hw", "hyp.hw.cpu"]
