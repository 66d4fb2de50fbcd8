"""Plotly figure builders, one module per page: pure functions, data in, figure out.

* :mod:`semrsm.figures.rsm` -- RSM heatmaps side by side, their difference, same-/different-label
  histograms.
* :mod:`semrsm.figures.neighbours` -- thumbnail gallery, nearest neighbours under both RSMs,
  retrieval metrics.
* :mod:`semrsm.figures.matching` -- token matching of one pair: the match lines over both
  images, contribution maps, the S x S inner products, a token's alternatives.
* :mod:`semrsm.figures.embedding` -- 2-D maps of the images from both RSMs, side by side.
* :mod:`semrsm.figures.analyses` -- the paper's analyses: translation, CKA per layer and
  layer x layer, agreement with the output, matcher comparison.

No Streamlit here: every figure can be built in a script or a notebook and saved with
``fig.write_html(...)``.
"""
