"""The tour's texts (semrsm/explorer/tour.py): four steps in the paper's order, and
verdicts that say what this run's numbers show — also when they do not show the finding."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from semrsm.explorer import tour as T


def test_four_steps_in_the_papers_order():
    assert T.TOUR_STEPS == ("translation", "retrieval", "agreement", "layers")
    for s in T.TOUR:
        assert s.finding.endswith(".") and s.look_for.endswith(".")
        assert s.look_for.count(". ") == 0  # one sentence
    assert T.TOUR_CONFIG.model == "demo-resnet" and T.TOUR_CONFIG.images == "shapes:32"
    layers = [SimpleNamespace(name=n, num_tokens=s)
              for n, s in (("act1", 1024), ("layer1", 256), ("layer4", 4))]
    assert T.tour_layers(layers) == ["layer1", "layer4"]
    assert T.tour_layers(layers[:1]) == ["act1"]


def test_translation_verdict():
    s = pd.DataFrame({"layer": ["l1", "l2", "l3"], "mean_spatial": [0.48, 0.46, 0.71],
                      "mean_semantic": [0.89, 0.87, 0.83]})
    v = T.translation_verdict(s)
    assert v.startswith("Here, in l1,") and "0.89" in v and "0.48" in v
    assert "+0.41" in v and "+0.12 in l3" in v and "as in the paper" in v
    s["mean_semantic"] = [0.5, 0.9, 0.95]
    assert "unlike in the paper" in T.translation_verdict(s)
    assert T.translation_verdict(s.iloc[:1]).endswith("0.48 under the classic one.")


def test_retrieval_agreement_and_layer_verdicts():
    c = {"k": 5, "precision_at_k": 0.29, "mean_average_precision": 0.48,
         "per_query": {"precision_at_k": np.array([0.2, 0.4, 0.0])}}
    s = {"k": 5, "precision_at_k": 0.49, "mean_average_precision": 0.65,
         "per_query": {"precision_at_k": np.array([0.6, 0.4, 0.4])}}
    assert "49% semantic against 29% classic" in T.retrieval_verdict(c, s)
    assert "semantic RSM retrieves more" in T.retrieval_verdict(c, s)
    assert "unlike in the paper" in T.retrieval_verdict(s, c)
    assert "equally" in T.retrieval_verdict(c, c)
    assert T.showcase_query(c, s) == 0  # gains 0.4, the first of two such queries
    ac, asem = {"spearman_r": -0.29, "n_pairs": 496}, {"spearman_r": -0.61, "n_pairs": 496}
    assert "-0.61 semantic against -0.29 classic over 496 pairs" in T.agreement_verdict(ac, asem)
    assert "unlike in the paper" in T.agreement_verdict(asem, ac)
    assert "undefined" in T.agreement_verdict({"spearman_r": float("nan")}, asem)
    v = T.layers_verdict(["a", "b", "c", "d"], [0.60, 0.57, 0.65, 0.91])
    assert "from 0.60 in a to 0.91 in d" in v and "rises towards 1" in v and "not at every" in v
    assert "not at every" not in T.layers_verdict(["a", "b"], [0.5, 0.9])
    assert "does not rise" in T.layers_verdict(["a", "b"], [0.9, 0.5])
