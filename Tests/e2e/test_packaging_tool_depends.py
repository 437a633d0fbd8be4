"""packaging/tool_depends.py, the `make debs` check that every tool the Swift code runs is a Depends of
the package shipping it (issue 18: unzip was in no package). Runs on this machine's dpkg database
(`make deps` installed the tools); needs no stack."""
from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "packaging"))
import tool_depends  # noqa: E402


def build_debs():
    loader = importlib.machinery.SourceFileLoader("build_debs", str(REPO / "packaging" / "build-debs"))
    spec = importlib.util.spec_from_loader("build_debs", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_the_packages_declare_every_tool_the_code_runs():
    assert build_debs().tool_depends_problems() == []


def test_a_missing_depends_is_reported_per_program(tmp_path, monkeypatch):
    (tmp_path / "Package.swift").write_text(
        '.target(name: "Importing", dependencies: ["Spawn"]),\n'
        '.executableTarget(name: "tessera-import-api", dependencies: ["Importing"]),\n'
        '.executableTarget(name: "tessera", dependencies: []),\n')
    (tmp_path / "Sources" / "Importing").mkdir(parents=True)
    (tmp_path / "Sources" / "Importing" / "Unpack.swift").write_text(
        'let a = try ChildProcess.tool("unzip")\n'
        'let b = URL(fileURLWithPath: "/usr/bin/ogrinfo")\n'
        'let c = URL(fileURLWithPath: "/bin/gzip")  // essential: needs no Depends\n'
        '// ChildProcess.tool("curl") in a comment is not a call\n')
    monkeypatch.setattr(tool_depends, "REPO", tmp_path)
    problems = tool_depends.check([("tessera", []), ("tessera-import-api", ["gdal-bin"])], "tessera-common", ["systemd"])
    assert len(problems) == 1, problems
    assert "tessera-import-api: runs unzip" in problems[0] and "Debian package unzip" in problems[0]
    assert tool_depends.check([("tessera-import-api", ["gdal-bin", "unzip"])], "tessera-common", []) == []


def test_a_tool_name_the_check_cannot_read_is_refused(tmp_path, monkeypatch):
    (tmp_path / "Package.swift").write_text('.executableTarget(name: "tessera-import-worker", dependencies: []),\n')
    (tmp_path / "Sources" / "tessera-import-worker").mkdir(parents=True)
    (tmp_path / "Sources" / "tessera-import-worker" / "main.swift").write_text(
        'for tool in ["ogrinfo"] { _ = try ChildProcess.tool(tool) }\n')
    monkeypatch.setattr(tool_depends, "REPO", tmp_path)
    problems = tool_depends.check([("tessera-import-worker", ["gdal-bin"])], "tessera-common", [])
    assert problems and "needs a literal name" in problems[0], problems
