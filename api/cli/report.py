"""`python -m api report`: seaborn charts of the incident_stats figures and an index.html.

Every number comes from the one incident_stats query; pandas only reshapes its aggregates.
Figures are drawn with matplotlib's object API on an Agg canvas, never through pyplot.
"""

import dataclasses
import datetime
import html
import pathlib

import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from api.lists import incident_filters
from api.sql import load_queries

HOUR = 3600.0


@dataclasses.dataclass
class Chart:
    title: str
    file: str
    table: pd.DataFrame
    has_data: bool
    draw: object  # draw(ax) plots the chart on a matplotlib Axes


def write_report(conn, out_dir, days=30):
    """Render every chart as a PNG into out_dir, and index.html showing them; their paths."""
    stats = load_queries().incident_stats(conn, **incident_filters({}), days=days)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    charts = [by_status(stats), by_severity(stats), daily(stats), mttr(stats), workload(stats)]
    for chart in charts:
        render(chart).savefig(out / chart.file)
    (out / "index.html").write_text(page(charts, days))
    return [out / chart.file for chart in charts] + [out / "index.html"]


def by_status(stats):
    table = pd.DataFrame(stats["by_status"].items(), columns=["status", "incidents"])
    return Chart(
        "Incidents by status",
        "status.png",
        table,
        table["incidents"].any(),
        lambda ax: counts(ax, table, "status"),
    )


def by_severity(stats):
    table = pd.DataFrame(stats["by_severity"].items(), columns=["severity", "incidents"])
    return Chart(
        "Incidents by severity",
        "severity.png",
        table,
        table["incidents"].any(),
        lambda ax: counts(ax, table, "severity"),
    )


def daily(stats):
    table = pd.DataFrame(stats["daily"], columns=["date", "opened", "resolved"])
    has_data = table[["opened", "resolved"]].to_numpy().any()
    return Chart(
        "Opened vs resolved per day (UTC)", "daily.png", table, has_data, lambda ax: daily_lines(ax, table)
    )


def mttr(stats):
    figures = {**stats["mttr_seconds"]["by_severity"], "all": stats["mttr_seconds"]}
    rows = [[severity] + [hours(f[key]) for key in ("mean", "p50", "p90")] for severity, f in figures.items()]
    table = pd.DataFrame(rows, columns=["severity", "mean", "p50", "p90"])
    return Chart(
        "Time to resolve by severity (hours)",
        "mttr.png",
        table,
        table["mean"].notna().any(),
        lambda ax: mttr_bars(ax, table),
    )


def workload(stats):
    table = pd.DataFrame(stats["workload"], columns=["username", "open", "in_progress"])
    return Chart(
        "Open workload per assignee",
        "workload.png",
        table,
        not table.empty,
        lambda ax: workload_bars(ax, table),
    )


def hours(seconds):
    return None if seconds is None else seconds / HOUR


def counts(ax, table, column):
    sns.barplot(data=table, x=column, y="incidents", hue=column, legend=False, ax=ax)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def daily_lines(ax, table):
    data = table.assign(date=pd.to_datetime(table["date"])).melt(
        id_vars="date", var_name="kind", value_name="incidents"
    )
    sns.lineplot(data=data, x="date", y="incidents", hue="kind", style="kind", markers=True, ax=ax)
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def mttr_bars(ax, table):
    data = table.melt(id_vars="severity", var_name="figure", value_name="hours")
    sns.barplot(data=data, x="severity", y="hours", hue="figure", ax=ax)


def workload_bars(ax, table):
    data = table.melt(id_vars="username", var_name="status", value_name="incidents")
    sns.barplot(data=data, y="username", x="incidents", hue="status", orient="y", ax=ax)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def render(chart):
    figure = Figure(figsize=(7, 4), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    with sns.axes_style("whitegrid"):
        ax = figure.add_subplot()
    ax.set_title(chart.title)
    if chart.has_data:
        chart.draw(ax)
    else:
        ax.set_axis_off()
        ax.text(
            0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", fontsize=20, color="grey"
        )
    return figure


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Incident report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
.row {{ display: flex; flex-wrap: wrap; gap: 2em; align-items: flex-start; }}
figure {{ margin: 0; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }}
</style>
</head>
<body>
<h1>Incident report</h1>
<p>Generated {generated} from the live database; the daily figures cover the last {days} days.</p>
{sections}
<script>
// Records how many images really loaded, so a headless browser can check the page.
window.addEventListener("load", () => {{
  const loaded = [...document.images].filter(image => image.complete && image.naturalWidth > 0);
  document.body.dataset.imagesLoaded = loaded.length;
  document.body.dataset.imagesTotal = document.images.length;
}});
</script>
</body>
</html>
"""


def page(charts, days):
    generated = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return PAGE.format(generated=generated, days=days, sections="\n".join(section(chart) for chart in charts))


def section(chart):
    title = html.escape(chart.title)
    caption = "" if chart.has_data else "<figcaption>no data</figcaption>"
    table = chart.table.to_html(index=False, na_rep="–", float_format="{:.2f}".format, border=0)
    return (
        f'<section id="{chart.file.removesuffix(".png")}">\n<h2>{title}</h2>\n<div class="row">\n'
        f'<figure><img src="{chart.file}" alt="{title}" width="700" height="400">{caption}</figure>\n'
        f"{table}\n</div>\n</section>"
    )
