"""The built-in image sets' table: the sidebar, links and the library read the same specs."""

from __future__ import annotations

import pytest

from semrsm.explorer.config import BUILTIN_SETS, DEFAULT_IMAGES, ExplorerConfig
from semrsm.explorer.image_sources import BUILTIN_SOURCES, Control
from semrsm.explorer.links import params_to_state, state_to_params
from semrsm.images import PHOTO_FILES, load_image_set


def test_config_lists_the_table():
    assert BUILTIN_SETS == tuple(BUILTIN_SOURCES) == ("shapes", "photos", "crops")
    assert DEFAULT_IMAGES == ExplorerConfig().images == "shapes:32"


@pytest.mark.parametrize("name", list(BUILTIN_SOURCES))
def test_default_spec_of_every_source_loads(name):
    spec = BUILTIN_SOURCES[name].spec({})
    images = load_image_set(spec)
    assert spec.split(":")[0] == name and len(images) >= 2


@pytest.mark.parametrize(
    "spec", ["shapes:8", "shapes:256:3", "photos", "crops:astronaut:4", "crops:coffee,astronaut:25"]
)
def test_spec_travels_through_a_link_unchanged(spec):
    state, problems = params_to_state({"images": spec}, photos=list(PHOTO_FILES))
    assert problems == [] and state["sb_source"] == spec.split(":")[0]
    assert state_to_params(state)[0]["images"] == spec


@pytest.mark.parametrize(
    ("spec", "why"),
    [("shapes:4", "N in 8..256"), ("shapes:32:4", "K in 1..3"), ("crops:astronaut:26", "4..25"),
     ("crops:nope:9", "unknown photos 'nope'"), ("photos:3", "'photos:3': photos"),
     ("folder:x", "only shapes, photos, crops")],
)
def test_a_spec_out_of_range_is_reported_not_used(spec, why):
    state, problems = params_to_state({"images": spec}, photos=list(PHOTO_FILES))
    assert state == {} and len(problems) == 1 and why in problems[0]


def test_slider_values_from_links_snap_to_the_step_and_stay_in_range():
    c = Control("k", "K", 32, low=8, high=256, step=4)
    assert [c.read(t) for t in ("8", "30", "256", "7", "257", "1_0", "٣٢")] == [
        8, 28, 256, None, None, None, None]


def test_empty_photo_choice_runs_what_the_link_says():
    # the sidebar and a link of the same state name the same set
    state = {"sb_source": "crops", "sb_crops_photos": [], "sb_crops_n": 7}
    spec = BUILTIN_SOURCES["crops"].spec(state)
    assert spec == state_to_params(state)[0]["images"] == "crops:astronaut,coffee:7"
