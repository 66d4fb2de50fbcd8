"""Small Streamlit pieces the pages share: the result header, image choices, clicks on
plotly points, download names and figure downloads."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import streamlit as st

from pages._sidebar import current_result, status_line
from semrsm.explorer import ExplorerResult
from semrsm.explorer.summary import signed

__all__ = [
    "MATCHER_COLUMNS",
    "csv_button",
    "csv_download",
    "figure_download",
    "gain_delta",
    "readable_columns",
    "file_stem",
    "image_choices",
    "page_result",
    "store_clicked_point",
]


def page_result(min_images: int = 0, too_few: str = "") -> ExplorerResult:
    """The sidebar's result with its status line; stops the page when there is none yet or
    when it has fewer than ``min_images`` images (then ``too_few`` says why)."""
    result = current_result()
    if result is None:
        st.stop()
    st.caption(status_line(result))
    if result.n < min_images:
        st.info(too_few)
        st.stop()
    return result


def gain_delta(gap: float, digits: int = 3, suffix: str = " from matching",
               color: str = "normal") -> dict[str, Any]:
    """``st.metric`` arguments for a change: ``delta`` with its sign, coloured and with an
    arrow, except a change that rounds to zero, which is a neutral ``0.000`` (grey, no
    arrow; ``-0.000`` drew a red arrow down)."""
    text = signed(gap, digits)
    if float(text) == 0:
        return {"delta": text + suffix, "delta_color": "off", "delta_arrow": "off"}
    return {"delta": text + suffix, "delta_color": color}


def image_choices(result: ExplorerResult) -> list[str]:
    """One select-box label per image: ``#index name (label)``."""
    labels = result.labels
    return [
        f"#{k} {nm}" + (f" ({labels[k]})" if labels else "") for k, nm in enumerate(result.names)
    ]


def store_clicked_point(chart_key: str, state_key: str, size: int) -> None:
    """Put the index of the first clicked point of chart ``chart_key`` (its ``customdata``,
    in ``[0, size)``) into ``st.session_state[state_key]``; use as an ``on_select`` callback,
    which runs before the widgets are drawn."""
    state = st.session_state.get(chart_key)
    try:
        points = state.selection.points
    except (AttributeError, KeyError):
        return
    for p in points:
        cd = p.get("customdata")
        idx = cd[0] if isinstance(cd, (list, tuple)) else cd
        if isinstance(idx, (int, float)) and 0 <= int(idx) < size:
            st.session_state[state_key] = int(idx)
            return


def file_stem(text: str) -> str:
    """``text`` as a safe file-name stem (letters, digits, ``._-``; at most 60 characters)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60]


def figure_download(container: Any, label: str, fig: Any, file_name: str, key: str) -> None:
    """A download button for ``fig`` as a standalone HTML file; the HTML is only built when
    the button is pressed."""
    container.download_button(
        label,
        data=lambda: fig.to_html(include_plotlyjs=True, full_html=True),
        file_name=file_name,
        mime="text/html",
        on_click="ignore",
        key=key,
    )


def csv_download(
    container: Any,
    label: str,
    make: Callable[[], str],
    result: ExplorerResult,
    what: str,
    key: str,
    help: str | None = None,
) -> None:
    """A download button for CSV text that ``make()`` builds when the button is pressed
    (``semrsm.explorer.tables``); the file is named after the result's model, layer and
    kernel, ``what`` first."""
    stem = f"semrsm_{what}_{result.model_name}_{result.layer.name}_{result.kernel}"
    csv_button(container, label, make, stem, key, help)


def csv_button(
    container: Any,
    label: str,
    data: str | Callable[[], str],
    name: str,
    key: str,
    help: str | None = None,
) -> None:
    """A download button for CSV text (or a function that builds it on the press), saved
    as ``<name>.csv`` with ``name`` made safe for a file name; the page does not rerun."""
    container.download_button(
        label,
        data=data,
        file_name=f"{file_stem(name)}.csv",
        mime="text/csv",
        on_click="ignore",
        key=key,
        help=help,
    )


#: headers of the matcher comparison table
MATCHER_COLUMNS = {
    "matcher": "matcher",
    "ratio_mean": "mean ratio to optimal",
    "ratio_min": "worst ratio to optimal",
    "frac_optimal": "share of pairs solved optimally",
    "seconds": "seconds",
    "pairs_per_second": "pairs per second",
    "speedup": "speed-up over exact",
    "n_pairs": "pairs",
}


def readable_columns(df: Any, names: Mapping[str, str] | None = None) -> Any:
    """``df`` with headers for people: ``names[col]`` where given, else the column name
    with underscores as spaces (``pairs_per_second`` → ``pairs per second``)."""
    names = names or {}
    return df.rename(columns=lambda c: names.get(str(c), str(c).replace("_", " ")))
