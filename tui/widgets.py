"""Small widgets of the dashboard: a text panel that redraws only when its content changes."""

from __future__ import annotations

from collections.abc import Callable, Hashable

from rich.text import Text
from textual.widget import Widget

#: Draws a panel's text for a width and a height in cells (height 0: as tall as needed).
DrawFn = Callable[[int, int], Text]


class Drawing(Widget):
    """A panel whose text is drawn by a pure function of the width (see :mod:`tui.panels`).

    :meth:`show` redraws only when the content key (or, without a key, the drawn text)
    changed; a resize redraws at the new width. Each repaint of an unchanged panel costs
    idle CPU for nothing, so nothing is repainted unless it changed.
    """

    DEFAULT_CSS = """
    Drawing { height: auto; text-wrap: nowrap; text-overflow: ellipsis; }
    """
    """Height follows the content; lines are never wrapped."""

    def __init__(
        self, *, id: str | None = None, classes: str | None = None, fill: bool = False
    ) -> None:
        super().__init__(id=id, classes=classes)
        self._fn: DrawFn = lambda width, height: Text("")
        self._key: Hashable = None
        self._text = Text("")
        self._drawn_size = (-1, -1)
        self._lines = 1
        self.fill = fill
        """True when CSS sizes the panel (its height is passed to the draw function, which
        may use it to grow charts); False when the panel is as tall as its text."""

    @property
    def text(self) -> Text:
        """The text drawn last (for tests)."""
        return self._text

    def _size_now(self) -> tuple[int, int]:
        width = self.content_size.width or max(self.app.size.width - 2, 1)
        return width, self.content_size.height if self.fill else 0

    def show(self, fn: DrawFn, key: Hashable = None) -> bool:
        """Draw ``fn(width, height)``; skip when ``key`` equals the previous key (if given)
        or the drawn text is unchanged.

        Returns:
            True when the panel was redrawn.
        """
        size = self._size_now()
        if key is not None and key == self._key and size == self._drawn_size:
            return False
        self._fn, self._key = fn, key
        text = fn(*size)
        if size == self._drawn_size and text.markup == self._text.markup:
            return False
        self._set(text, size)
        return True

    def _set(self, text: Text, size: tuple[int, int]) -> None:
        lines = text.plain.count("\n") + 1
        self._text, self._drawn_size = text, size
        if lines != self._lines:
            self._lines = lines
            self.clear_cached_dimensions()
            self.refresh(layout=True)
        else:
            self.refresh()

    def on_resize(self) -> None:
        """Redraw at the new size."""
        size = self._size_now()
        if size != self._drawn_size:
            self._set(self._fn(*size), size)

    def render(self) -> Text:
        """The last drawn text."""
        return self._text
