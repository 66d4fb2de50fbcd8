"""semrsm explorer — run with ``streamlit run app.py``.

The entrypoint registers the pages with ``st.navigation`` and runs the selected one.
Each page draws the shared sidebar (model, weights, layer, images, kernel, matcher,
device) through ``pages._sidebar.current_result()``, whose widget values travel from
page to page. Pages of the next issue (token matching, embedding, analyses) are
registered when their files exist, so the app works before and after they land.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from pages._links import run_with_links

st.set_page_config(
    page_title="semrsm explorer",
    page_icon=":material/grid_view:",
    layout="wide",
    initial_sidebar_state="expanded",
)

PAGES_DIR = Path(__file__).resolve().parent / "pages"

pages = [
    st.Page("pages/rsm.py", title="RSMs", icon=":material/grid_on:", default=True),
    st.Page("pages/neighbours.py", title="Nearest neighbours", icon=":material/image_search:"),
]
# Pages that may not exist yet (issue 5): (file, title, icon)
for file, title, icon in (
    ("token_matching.py", "Token matching", ":material/compare_arrows:"),
    ("embedding.py", "Embedding", ":material/scatter_plot:"),
    ("analyses.py", "Analyses", ":material/analytics:"),
    ("compare.py", "Compare", ":material/compare:"),
):
    if (PAGES_DIR / file).is_file():
        pages.append(st.Page(f"pages/{file}", title=title, icon=icon))

run_with_links(pages)  # st.navigation(pages).run(), with the view carried in the URL
