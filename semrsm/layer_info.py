"""The description of an extractable layer (:class:`LayerInfo`), without torch.

``semrsm.layers`` re-exports it; the app reads layer lists from the cache with it before
torch is imported.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LayerInfo"]


@dataclass(frozen=True)
class LayerInfo:
    """A layer whose output can be turned into tokens.

    Attributes
    ----------
    name : str
        Module path in the model (``"layer1"``, ``"layer2.0"``, ``"stages.1"``, ``"blocks.3"``).
    kind : {"cnn", "vit"}
        ``"vit"`` for plain transformers with patch tokens, ``"cnn"`` for feature maps.
    channels : int
        ``C``, the length of each token.
    grid : (int, int)
        ``(H, W)`` of the spatial positions for the model's input size.
    num_tokens : int
        ``S = H * W``.
    """

    name: str
    kind: str
    channels: int
    grid: tuple[int, int]
    num_tokens: int

    @property
    def shape(self) -> tuple[int, int]:
        """``(S, C)``: the token array of one image."""
        return (self.num_tokens, self.channels)
