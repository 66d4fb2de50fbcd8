"""Plotly figure builders, one module per page: pure functions, data in, figure out.

* :mod:`semrsm.figures.rsm` -- RSM heatmaps side by side, their difference, same-/different-label
  histograms.
* :mod:`semrsm.figures.neighbours` -- thumbnail gallery, nearest neighbours under both RSMs,
  retrieval metrics.

No Streamlit here: every figure can be built in a script or a notebook and saved with
``fig.write_html(...)``.
"""
