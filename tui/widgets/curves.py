"""Loss and learning-rate curves of one job, redrawn as metrics records arrive (textual-plotext)."""

from __future__ import annotations

import math

from textual_plotext import PlotextPlot


class Curve(PlotextPlot):
    DEFAULT_CSS = "Curve { height: 1fr; min-height: 6; }"

    def __init__(self, title: str, color: str, **kwargs):
        super().__init__(**kwargs)
        self.title_text = title
        self.color = color

    def show(self, xs: list[int], ys: list[float]) -> None:
        points = [(x, y) for x, y in zip(xs, ys) if y is not None and not math.isnan(y)]
        plt = self.plt
        plt.clear_data()
        plt.title(self.title_text)
        if points:
            plt.plot([p[0] for p in points], [p[1] for p in points], color=self.color, marker="braille")
        self.refresh()
