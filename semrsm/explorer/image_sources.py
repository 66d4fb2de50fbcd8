"""The built-in image sets as the app offers them: one table for the sidebar and links.

Each :class:`BuiltinSource` says how the sidebar shows a set of :mod:`semrsm.images`
(its label and controls, with their ranges and defaults) and how the controls' values
become an image-set spec and back (``shapes:32:2`` ↔ ``sb_shapes_n=32, sb_shapes_k=2``).
The sidebar (``pages/_controls.py``) draws the controls, links
(:mod:`semrsm.explorer.links`) write and read the spec, and the explorer's configuration
lists the names (:data:`semrsm.explorer.config.BUILTIN_SETS`), all from this table.
Pure Python: no Streamlit, torch or numba.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from semrsm.images.photos import PHOTO_FILES

__all__ = ["BUILTIN_SOURCES", "BuiltinSource", "Control", "whole_number"]

#: sidebar state → value (what a control's key holds; missing keys take the default)
State = Mapping[str, Any]


def whole_number(value: object, lo: int, hi: int) -> int | None:
    """A whole number in ``lo..hi`` written in ASCII digits, else None.

    Stricter than ``int()``, which also takes ``1_000``, other scripts' digits and
    thousands of digits (link values are untrusted text)."""
    text = str(value).strip()
    if not re.fullmatch(r"[+-]?[0-9]{1,12}", text):
        return None
    v = int(text)
    return v if lo <= v <= hi else None


@dataclass(frozen=True)
class Control:
    """One sidebar control of a built-in set.

    Attributes
    ----------
    key : the widget's session-state key (``sb_<set>_<name>``).
    label : the widget's label.
    default : its initial value.
    low, high, step : a slider's range and step (``kind="slider"``).
    options : a multiselect's choices (``kind="multiselect"``).
    help : the widget's help text.
    """

    key: str
    label: str
    default: Any
    kind: str = "slider"
    low: int = 0
    high: int = 0
    step: int = 1
    options: tuple[str, ...] = ()
    help: str | None = None

    def value(self, state: State) -> Any:
        """The control's value in ``state``, or its default when missing or empty."""
        v = state.get(self.key)
        return self.default if v is None or (self.kind == "multiselect" and not v) else v

    def read(self, text: str) -> int | None:
        """A slider value from link text, within the range and snapped down to the step."""
        v = whole_number(text, self.low, self.high)
        return None if v is None else v - (v - self.low) % self.step


@dataclass(frozen=True)
class BuiltinSource:
    """A built-in image set of the sidebar.

    Attributes
    ----------
    name : the spec's head (``shapes``) and the sidebar's ``sb_source`` value.
    label : the sidebar's name of the set.
    controls : its controls, in the sidebar's order.
    to_spec : controls' values (``{key: value}``, all present) → image-set spec.
    from_spec : the spec split at ``:`` and the known photo names (empty: any) → the
        controls' values, or a str (empty or saying what is unknown) when malformed or out
        of range.
    form : the accepted link forms, for messages.
    seeded : whether the set uses the configuration's seed (links then carry it).
    """

    name: str
    label: str
    to_spec: Callable[[dict[str, Any]], str]
    from_spec: Callable[[list[str], Sequence[str]], dict[str, Any] | str]
    form: str
    controls: tuple[Control, ...] = field(default=())
    seeded: bool = False

    def spec(self, state: State) -> str:
        """The image-set spec of the sidebar ``state`` (missing values: the defaults)."""
        return self.to_spec({c.key: c.value(state) for c in self.controls})

    def defaults(self) -> dict[str, Any]:
        """``{key: default}`` of the controls."""
        return {c.key: c.default for c in self.controls}


# ------------------------------------------------------------------------ shapes
_SHAPES_N = Control("sb_shapes_n", "Images", 32, low=8, high=256, step=4)
_SHAPES_K = Control("sb_shapes_k", "Objects per image", 1, low=1, high=3,
                    help="With several objects the label is the largest object's class.")


def _shapes_spec(v: dict[str, Any]) -> str:
    k = int(v[_SHAPES_K.key])
    return f"shapes:{int(v[_SHAPES_N.key])}" + (f":{k}" if k > 1 else "")


def _shapes_values(parts: list[str], photos: Sequence[str]) -> dict[str, Any] | str:
    n = _SHAPES_N.read(parts[1]) if len(parts) > 1 else _SHAPES_N.default
    k = _SHAPES_K.read(parts[2]) if len(parts) > 2 else _SHAPES_K.default
    if n is None or k is None or len(parts) > 3:
        return ""
    return {_SHAPES_N.key: n, _SHAPES_K.key: k}


# ------------------------------------------------------------------------ crops
_PHOTO_NAME = re.compile(r"[A-Za-z0-9_-]+")
_CROPS_PHOTOS = Control("sb_crops_photos", "Photos", ["astronaut", "coffee"],
                        kind="multiselect", options=tuple(PHOTO_FILES))
_CROPS_N = Control("sb_crops_n", "Crops per photo", 9, low=4, high=25)


def _crops_spec(v: dict[str, Any]) -> str:
    return f"crops:{','.join(v[_CROPS_PHOTOS.key])}:{int(v[_CROPS_N.key])}"


def _crops_values(parts: list[str], photos: Sequence[str]) -> dict[str, Any] | str:
    names = [x for x in (parts[1].split(",") if len(parts) > 1 else []) if x]
    per = _CROPS_N.read(parts[2]) if len(parts) > 2 else _CROPS_N.default
    bad = [x for x in names if (photos and x not in photos) or not _PHOTO_NAME.fullmatch(x)]
    if bad:
        return "unknown photos " + ", ".join(repr(x[:30]) for x in bad[:5])
    if not names or per is None or len(parts) > 3:
        return ""
    return {_CROPS_PHOTOS.key: names, _CROPS_N.key: per}


#: name → built-in set, in the sidebar's order
BUILTIN_SOURCES: dict[str, BuiltinSource] = {
    s.name: s
    for s in (
        BuiltinSource(
            "shapes", "Shapes (procedural, labelled)", _shapes_spec, _shapes_values,
            f"shapes:N[:K] with N in {_SHAPES_N.low}..{_SHAPES_N.high} and K in "
            f"{_SHAPES_K.low}..{_SHAPES_K.high}",
            (_SHAPES_N, _SHAPES_K), seeded=True,
        ),
        BuiltinSource(
            "photos", "Photos (scikit-image)", lambda v: "photos",
            lambda parts, photos: {} if len(parts) == 1 else "", "photos",
        ),
        BuiltinSource(
            "crops", "Translated crops of photos", _crops_spec, _crops_values,
            f"crops:PHOTO[,PHOTO]:K with K in {_CROPS_N.low}..{_CROPS_N.high}",
            (_CROPS_PHOTOS, _CROPS_N),
        ),
    )
}
