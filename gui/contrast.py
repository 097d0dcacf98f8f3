"""Text contrast: WCAG 2 contrast ratios, and the colour for secondary (hint) text that stays readable.

Source of the formulas: WCAG 2.1, "relative luminance" and "contrast ratio" definitions
(https://www.w3.org/TR/WCAG21/#dfn-relative-luminance); 4.5:1 is its AA level for normal text.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette

#: WCAG 2.1 AA minimum for normal-size text.
MIN_CONTRAST = 4.5


def _channel(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(colour: QColor) -> float:
    """Relative luminance (0 black .. 1 white) of an opaque sRGB colour."""
    return 0.2126 * _channel(colour.redF()) + 0.7152 * _channel(colour.greenF()) + 0.0722 * _channel(colour.blueF())


def mix(a: QColor, b: QColor, t: float) -> QColor:
    """The opaque colour ``t`` of the way from ``a`` (0) to ``b`` (1), channel by channel in sRGB."""
    return QColor.fromRgbF(a.redF() * (1 - t) + b.redF() * t, a.greenF() * (1 - t) + b.greenF() * t,
                           a.blueF() * (1 - t) + b.blueF() * t)


def over(fg: QColor, bg: QColor) -> QColor:
    """``fg`` (maybe translucent) painted over the opaque ``bg``: the colour the eye gets."""
    return mix(bg, fg, fg.alphaF())


def contrast_ratio(fg: QColor, bg: QColor) -> float:
    """WCAG contrast ratio (1..21) of text ``fg`` (alpha composited) on ``bg``."""
    la, lb = luminance(over(fg, bg)), luminance(bg)
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


def secondary_text(palette: QPalette, background: QPalette.ColorRole = QPalette.ColorRole.Window) -> QColor:
    """A muted text colour for hints that still has at least :data:`MIN_CONTRAST` against ``background``:
    the palette's placeholder colour when it is readable, else the window text mixed toward the
    background only as far as that contrast allows (Fusion's light placeholder measured 3.9:1 as painted)."""
    bg = palette.color(background)
    placeholder = palette.color(QPalette.ColorRole.PlaceholderText)
    if contrast_ratio(placeholder, bg) >= MIN_CONTRAST:
        return over(placeholder, bg)
    text = palette.color(QPalette.ColorRole.WindowText)
    best = best_mixed = over(text, bg)
    for step in range(1, 20):  # from the full text colour toward the background, in 5% steps
        mixed = mix(best, bg, step / 20)
        if contrast_ratio(mixed, bg) < MIN_CONTRAST + 0.2:  # a margin for antialiasing
            break
        best_mixed = mixed
    return best_mixed


def readable_on(colour: QColor, background: QColor, minimum: float = MIN_CONTRAST + 0.2) -> QColor:
    """``colour`` as text on ``background``: unchanged when its contrast reaches ``minimum``, else mixed toward
    black (on a light background) or white (on a dark one) in 5% steps until it does, so a warning's orange
    stays orange and readable in both palettes (``#b26a00`` measured 3.34:1 on a dark ``#2b2b2b``).

    ``minimum`` carries a 0.2 margin over :data:`MIN_CONTRAST` for antialiasing, as :func:`secondary_text`.
    """
    colour = over(colour, background)
    if contrast_ratio(colour, background) >= minimum:
        return colour
    white, black = QColor(255, 255, 255), QColor(0, 0, 0)
    end = black if contrast_ratio(black, background) >= contrast_ratio(white, background) else white
    mixed = colour
    for step in range(1, 21):
        mixed = mix(colour, end, step / 20)
        if contrast_ratio(mixed, background) >= minimum:
            break
    return mixed
