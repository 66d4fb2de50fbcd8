"""AppTest of the Search page: a query of the set, another k and K, an uploaded query (and a
broken upload), the matching of a chosen pair; and that the app starts and searches
without importing ray.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.app_pages import assert_clean, open_app, plotly_figures

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
PAGE = "pages/search.py"
TIMEOUT = 240

pytestmark = [pytest.mark.timeout(600), pytest.mark.usefixtures("app_cache_dir")]


def markdown_text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def _png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    img = Image.new("RGB", (64, 64), (240, 240, 240))
    img.paste(Image.new("RGB", (30, 30), color), (10, 20))
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_a_query_of_the_set():
    at = open_app("search.py", timeout=TIMEOUT)
    assert_clean(at)
    assert at.title[0].value == "Search"
    assert len(at.markdown[0].value.split()) > 40
    results, overlay = plotly_figures(at)
    assert [t["name"] for t in results["data"]] == [
        "classic (mean-pooled tokens, cosine)", "semantic (re-ranked)"]
    assert [len(t["customdata"]) for t in results["data"]] == [5, 5]
    assert overlay["layout"]["meta"]["grid"] == [4, 4]  # demo-resnet's default layer
    text = markdown_text(at)
    assert "The full semantic RSM of this set ranks the same images on top in" in text
    assert "of class" in text
    # another query, k and K: the page follows
    at.selectbox(key="se_query").set_value(7).run()
    at.slider(key="se_k").set_value(3).run()
    at.slider(key="se_rerank").set_value(31).run()
    assert_clean(at)
    results, _ = plotly_figures(at)
    assert [len(t["customdata"]) for t in results["data"]] == [3, 3]
    # every candidate re-ranked: the full semantic RSM's top 3, exactly
    assert "ranks the same images on top in **3 of 3** places" in markdown_text(at)
    # the matching of another result
    second = at.selectbox(key="se_pair").options[1]
    at.selectbox(key="se_pair").set_value(second).run()
    assert_clean(at)
    assert len(plotly_figures(at)) == 2


def test_projector_mode_enlarges_the_search_figures():
    small = plotly_figures(open_app("search.py", timeout=TIMEOUT))
    # under AppTest only the first run goes through app.py, which draws the toggle: the
    # setting is given as the session's (as tests/test_app_teaching.py does)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["projector_mode"] = True
    at.run()
    at.session_state["projector_mode"] = True
    at.switch_page(PAGE).run()
    assert_clean(at)
    big = plotly_figures(at)
    assert [b["layout"]["height"] > s["layout"]["height"] for b, s in zip(big, small, strict=True)] \
        == [True, True]


def test_an_uploaded_query():
    at = open_app("search.py", timeout=TIMEOUT)
    at.radio(key="se_source").set_value("an uploaded image").run()
    assert_clean(at)
    assert any("Upload an image" in i.value for i in at.info)
    at.file_uploader(key="se_upload").set_value([("red.png", _png((220, 30, 30)), "image/png")]).run()
    assert_clean(at)
    results, overlay = plotly_figures(at)
    assert len(results["data"]) == 2
    assert "upload: red.png" in json.dumps(results["layout"]["annotations"])
    assert overlay["layout"]["meta"]["grid"] == [4, 4]
    at.file_uploader(key="se_upload").set_value(
        [("broken.png", b"\x89PNG\r\n\x1a\n not an image", "image/png")]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.error and "broken.png" in at.error[0].value


def test_the_app_starts_and_searches_without_ray(tmp_path):
    code = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        "at = AppTest.from_file('app.py', default_timeout=240)\n"
        "at.run()\n"
        "at.switch_page('pages/search.py').run()\n"
        "assert not at.exception and not at.error, [e.value for e in at.exception]\n"
        "print('ray' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SEMRSM_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=500, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "False"
