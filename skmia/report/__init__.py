"""Reports: tables of results from run directories, their plots, and an HTML page of them."""

from ._html import html_report, write_html_report
from ._plots import (
    figure_png,
    loss_histogram_figure,
    privacy_utility_figure,
    roc_figure,
    training_curves_figure,
)
from ._tables import REPORT_COLUMNS, collect_results, format_table

__all__ = [
    "REPORT_COLUMNS",
    "collect_results",
    "figure_png",
    "format_table",
    "html_report",
    "loss_histogram_figure",
    "privacy_utility_figure",
    "roc_figure",
    "training_curves_figure",
    "write_html_report",
]
