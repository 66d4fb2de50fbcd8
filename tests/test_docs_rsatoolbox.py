"""The rsatoolbox snippets of the docs run as written: every ```python block of docs/*.md
that imports rsatoolbox is executed in a folder holding the .npz files it loads (made from
a real run on the offline default)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _snippets() -> list[tuple[str, str]]:
    out = []
    for doc in sorted((ROOT / "docs").glob("*.md")):
        for k, code in enumerate(BLOCK.findall(doc.read_text(encoding="utf-8"))):
            if "import rsatoolbox" in code:
                out.append((f"{doc.name}#{k}", code))
    return out


def test_the_docs_have_an_rsatoolbox_snippet():
    assert any("tau-a" in code for _, code in _snippets())


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    from semrsm.cache import Cache
    from semrsm.explorer import ExplorerConfig, compute

    cache = Cache(tmp_path_factory.mktemp("docs-cache"))
    return compute(ExplorerConfig(images="shapes:12", layer="layer3"), cache, with_proba=False)


@pytest.mark.parametrize("name,code", _snippets(), ids=[n for n, _ in _snippets()])
def test_rsatoolbox_snippet_runs(name, code, result, tmp_path, monkeypatch):
    pytest.importorskip("rsatoolbox")
    from semrsm.explorer.exports import kernels_npz

    for file in set(re.findall(r'"([\w.-]+\.npz)"', code)):
        data = kernels_npz(result) if "kernels" in file else result.bundle_npz()
        (tmp_path / file).write_bytes(data)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, name, "exec"), {"__name__": "__doc_snippet__"})
