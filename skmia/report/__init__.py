"""Reports: tables of results from run directories, and the plots of an attack run."""

from ._plots import figure_png, loss_histogram_figure, roc_figure
from ._tables import REPORT_COLUMNS, collect_results, format_table

__all__ = [
    "REPORT_COLUMNS",
    "collect_results",
    "figure_png",
    "format_table",
    "loss_histogram_figure",
    "roc_figure",
]
