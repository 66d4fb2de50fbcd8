"""semrsm explorer — run with ``streamlit run app.py``.

The entrypoint registers the pages with ``st.navigation`` and runs the selected one.
Each page draws the shared sidebar (model, weights, layer, images, kernel, matcher,
device) through ``pages._run.current_result()``, whose widget values travel from page
to page. The Tour (``pages/tour.py``) steps through the paper's four findings on the
offline default; the sidebar's *Projector mode* (``pages/_projector.py``) enlarges text
and figures on every page. Pages that may be absent (token matching, embedding, analyses,
compare, search) are registered when their files exist.

Everything the browser loads comes from this server: the page icon is a file of
``assets/`` and the navigation has no icons (no icon font from the internet).
"""

from __future__ import annotations

from pages._startup import own_numba_cache

own_numba_cache()  # before anything imports numba (semrsm does)

from semrsm.explorer.warmup import start_precompile  # noqa: E402 - stdlib and numpy only

# A fresh install (numba's cache lacks the exact matcher): compile it in another process
# now, while this one imports torch and timm and loads the model.
start_precompile()

from pathlib import Path  # noqa: E402

import streamlit as st  # noqa: E402

from pages._links import run_with_links  # noqa: E402
from pages._projector import projector_toggle  # noqa: E402
from pages._resources import FIRST_RESULT, PAGE_DRAWN, start_background_warm_up  # noqa: E402

ROOT = Path(__file__).resolve().parent
PAGES_DIR = ROOT / "pages"

st.set_page_config(
    page_title="semrsm explorer",
    page_icon=str(ROOT / "assets" / "favicon.png"),
    layout="wide",
    initial_sidebar_state="expanded",
)
start_background_warm_up()

pages = [
    st.Page("pages/rsm.py", title="RSMs", default=True),
    st.Page("pages/tour.py", title="Tour of the findings"),
    st.Page("pages/neighbours.py", title="Nearest neighbours"),
]
# Pages that may not exist yet: (file, title). No page icons: Streamlit's named icons come
# from an icon font on the internet, and emoji show as empty boxes where the browser's
# machine has no emoji font.
for file, title in (
    ("token_matching.py", "Token matching"),
    ("embedding.py", "Embedding"),
    ("analyses.py", "Analyses"),
    ("compare.py", "Compare"),
    ("search.py", "Search"),
):
    if (PAGES_DIR / file).is_file():
        pages.append(st.Page(f"pages/{file}", title=title))

projector_toggle()  # one toggle in the sidebar: larger text and figures for a class
run_with_links(pages)  # st.navigation(pages).run(), with the view carried in the URL
if FIRST_RESULT.is_set() and not PAGE_DRAWN.is_set():
    # Modules the warm-up imports become visible in sys.modules before they finish
    # importing; plotly peeks at sys.modules["pandas"] without the import lock, so pandas
    # is imported here, in the script thread, before the warm-up's later steps start.
    import pandas  # noqa: F401

    # the first result is drawn: the background warm-up may now take the cores
    PAGE_DRAWN.set()
