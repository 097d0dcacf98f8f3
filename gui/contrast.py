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


def over(fg: QColor, bg: QColor) -> QColor:
    """``fg`` (maybe translucent) painted over the opaque ``bg``: the colour the eye gets."""
    a = fg.alphaF()
    return QColor.fromRgbF(fg.redF() * a + bg.redF() * (1 - a), fg.greenF() * a + bg.greenF() * (1 - a),
                           fg.blueF() * a + bg.blueF() * (1 - a))


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
        t = step / 20
        mixed = QColor.fromRgbF(best.redF() * (1 - t) + bg.redF() * t, best.greenF() * (1 - t) + bg.greenF() * t,
                                best.blueF() * (1 - t) + bg.blueF() * t)
        if contrast_ratio(mixed, bg) < MIN_CONTRAST + 0.2:  # a margin for antialiasing
            break
        best_mixed = mixed
    return best_mixed
