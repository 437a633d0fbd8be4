#!/usr/bin/env python3
"""Every program a Tessera binary executes must come from a Depends of the package that ships it.

    packaging/tool_depends.py        (also run by packaging/build-debs before it builds anything)

The tools are found in the Swift sources by how the code names them: `ChildProcess.tool("NAME")`
(an argument that is not a string literal is refused, so nothing escapes the check) and absolute
paths such as "/usr/bin/NAME". Each Swift target's tools reach every executable that links it
(targets and dependencies from Package.swift); `dpkg -S` on this machine (`make deps` installed
them all) names the Debian package of each tool. Essential packages (coreutils, gzip, ...) need
no Depends. A program package may rely on its own EXTRA-DEPENDS (packaging/programs) and on
tessera-common's Depends, which every program package depends on.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOOL_CALL = re.compile(r"ChildProcess\.tool\(([^)]*)\)")
TOOL_PATH = re.compile(r'"((?:/usr)?(?:/local)?/s?bin/([A-Za-z0-9_.+-]+))"')
TARGET = re.compile(r'\.(?:executableTarget|target|testTarget|systemLibrary)\(\s*name:\s*"([^"]+)"(?:\s*,\s*dependencies:\s*\[([^\]]*)\])?')


def targets() -> dict[str, list[str]]:
    text = (REPO / "Package.swift").read_text()
    return {m.group(1): re.findall(r'"([^"]+)"', m.group(2) or "") for m in TARGET.finditer(text)}


def tools_of(target: str) -> tuple[set[str], list[str]]:
    """Tool names a target's sources execute, and the call sites the check cannot read."""
    tools, unreadable = set(), []
    for f in sorted((REPO / "Sources" / target).rglob("*.swift")):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            code = line.split("//", 1)[0] if not line.lstrip().startswith("///") else ""
            for m in TOOL_CALL.finditer(code):
                arg = m.group(1).strip()
                if re.fullmatch(r'"[A-Za-z0-9_.+-]+"', arg):
                    tools.add(arg.strip('"'))
                elif arg != "_ name: String":
                    unreadable.append(f"{f.relative_to(REPO)}:{n}: ChildProcess.tool({arg}) needs a literal name")
            tools.update(m.group(2) for m in TOOL_PATH.finditer(code))
    return tools, unreadable


def closure(name: str, graph: dict[str, list[str]]) -> set[str]:
    seen, todo = set(), [name]
    while todo:
        t = todo.pop()
        if t not in seen:
            seen.add(t)
            todo.extend(graph.get(t, []))
    return seen


def debian_package(tool: str) -> str | None:
    for d in ("/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"):
        r = subprocess.run(["dpkg", "-S", f"{d}/{tool}"], text=True, capture_output=True)
        if r.returncode == 0:
            return r.stdout.split(":", 1)[0].split(",")[0].strip()
    return None


def essential(package: str) -> bool:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Essential}", package], text=True, capture_output=True)
    return r.stdout.strip() == "yes"


def names(depends: list[str]) -> set[str]:
    """Package names a Depends list can satisfy (any alternative, without version or arch)."""
    return {re.split(r"[\s(:]", alt.strip(), maxsplit=1)[0] for d in depends for alt in d.split("|")}


def check(programs: list[tuple[str, list[str]]], common_name: str, common_depends: list[str]) -> list[str]:
    """Problems found; `programs` are (executable, its package's own Depends), the CLI included."""
    graph = targets()
    problems, per_target, packages = [], {}, {}
    for target in graph:
        tools, unreadable = tools_of(target)
        per_target[target] = tools
        problems += unreadable
    for program, depends in programs:
        if program not in graph:
            problems.append(f"{program}: no such target in Package.swift")
            continue
        allowed = names(depends) | names(common_depends)
        for target in sorted(closure(program, graph)):
            for tool in sorted(per_target.get(target, ())):
                if tool not in packages:
                    packages[tool] = debian_package(tool)
                package = packages[tool]
                if package is None:
                    problems.append(f"{program}: runs {tool} (Sources/{target}), which no installed Debian package provides here (make deps)")
                elif package not in allowed and not essential(package):
                    where = common_name if program == "tessera" else f"{program} in packaging/programs (or {common_name})"
                    problems.append(f"{program}: runs {tool} (Sources/{target}) from Debian package {package}, missing from the Depends of {where}")
    return problems


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import importlib.machinery
    import importlib.util
    loader = importlib.machinery.SourceFileLoader("build_debs", str(REPO / "packaging" / "build-debs"))
    spec = importlib.util.spec_from_loader("build_debs", loader)
    build_debs = importlib.util.module_from_spec(spec)
    loader.exec_module(build_debs)
    found = build_debs.tool_depends_problems()
    for p in found:
        print(f"tool_depends: {p}", file=sys.stderr)
    sys.exit(1 if found else 0)
