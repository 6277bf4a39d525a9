"""`streamctl report --html FILE`: one self-contained page (inline SVG, no scripts, nothing fetched)
with revenue by category, sales by payment method and revenue per window, from PostgreSQL."""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from streamctl.endpoints import Endpoints

PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7"]


@dataclass(frozen=True)
class ReportData:
    by_category: list[tuple[str, Decimal, int]]  # category, revenue, transactions
    by_payment: list[tuple[str, int, Decimal]]  # payment method, transactions, revenue
    per_window: list[tuple[datetime, Decimal, int]]  # window start, revenue, transactions
    totals: tuple[int, int, Decimal]  # transactions, items, revenue


def fetch_report_data(endpoints: Endpoints, last_windows: int = 60) -> ReportData:
    conn = endpoints.postgres_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT category, sum(revenue), sum(transaction_count) FROM sales_summary"
                        " GROUP BY 1 ORDER BY 2 DESC")
            by_category = cur.fetchall()
            cur.execute("SELECT payment_method, sum(transaction_count), sum(revenue) FROM sales_summary"
                        " GROUP BY 1 ORDER BY 2 DESC")
            by_payment = cur.fetchall()
            cur.execute("SELECT * FROM (SELECT window_start, sum(revenue), sum(transaction_count) FROM sales_summary"
                        " GROUP BY 1 ORDER BY 1 DESC LIMIT %s) w ORDER BY 1", (last_windows,))
            per_window = cur.fetchall()
            cur.execute("SELECT coalesce(sum(transaction_count), 0), coalesce(sum(items_sold), 0),"
                        " coalesce(sum(revenue), 0) FROM sales_summary")
            totals = cur.fetchone()
    finally:
        conn.close()
    return ReportData(by_category, by_payment, per_window, totals)


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


def bar_chart(title: str, rows: list[tuple[str, float]], label: str, chart_id: str, decimals: int = 2) -> str:
    width, bar_h, gap, left = 640, 26, 10, 150
    height = 50 + len(rows) * (bar_h + gap)
    top = max((v for _, v in rows), default=0) or 1
    parts = [f'<svg id="{chart_id}" role="img" aria-label="{html.escape(title)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}">',
             f'<text x="0" y="20" class="title">{html.escape(title)}</text>']
    for i, (name, value) in enumerate(rows):
        y = 40 + i * (bar_h + gap)
        w = max(2, (width - left - 120) * value / top)
        parts.append(f'<text x="{left - 8}" y="{y + 18}" text-anchor="end" class="label">{html.escape(name)}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{PALETTE[i % len(PALETTE)]}">'
                     f'<title>{html.escape(name)}: {value:,.2f} {label}</title></rect>')
        parts.append(f'<text x="{left + w + 6:.1f}" y="{y + 18}" class="value">{value:,.{decimals}f}</text>')
    if not rows:
        parts.append('<text x="0" y="60" class="label">no data yet</text>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart(title: str, points: list[tuple[str, float]], chart_id: str) -> str:
    width, height, left, bottom, top_pad = 640, 280, 70, 40, 40
    parts = [f'<svg id="{chart_id}" role="img" aria-label="{html.escape(title)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}">',
             f'<text x="0" y="20" class="title">{html.escape(title)}</text>']
    if points:
        peak = max(v for _, v in points) or 1
        plot_w, plot_h = width - left - 20, height - bottom - top_pad
        step = plot_w / max(1, len(points) - 1)
        coords = [(left + i * step, top_pad + plot_h * (1 - v / peak)) for i, (_, v) in enumerate(points)]
        parts.append(f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width - 20}" y2="{top_pad + plot_h}" '
                     'stroke="#999"/>')
        parts.append(f'<text x="{left - 6}" y="{top_pad + 4}" text-anchor="end" class="value">{peak:,.0f}</text>')
        parts.append(f'<polyline fill="none" stroke="{PALETTE[0]}" stroke-width="2.5" points="'
                     + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords) + '"/>')
        for (x, y), (name, value) in zip(coords, points, strict=True):
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{PALETTE[0]}"><title>{html.escape(name)}: '
                         f'{value:,.2f}</title></circle>')
        last = len(points) - 1
        for index in sorted({0, len(points) // 2, last}):
            x = coords[index][0]
            anchor = "start" if index == 0 else "end" if index == last else "middle"
            parts.append(f'<text x="{x:.1f}" y="{height - 12}" text-anchor="{anchor}" class="label">'
                         f'{html.escape(points[index][0])}</text>')
    else:
        parts.append('<text x="0" y="60" class="label">no data yet</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(data: ReportData, stack_name: str) -> str:
    transactions, items, revenue = data.totals
    generated = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    charts = [
        bar_chart("Revenue by category", [(c, float(r)) for c, r, _ in data.by_category], "BRL", "revenue-by-category"),
        bar_chart("Sales by payment method", [(p, float(n)) for p, n, _ in data.by_payment], "sales",
                  "sales-by-payment-method", decimals=0),
        line_chart("Revenue per window", [(w.strftime("%H:%M:%S"), float(r)) for w, r, _ in data.per_window],
                   "revenue-per-window"),
    ]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>streamctl report: {html.escape(stack_name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; background: #fff; }}
h1 {{ font-size: 1.4rem; }} .kpis {{ display: flex; gap: 2rem; margin: 1rem 0 2rem; }}
.kpi b {{ display: block; font-size: 1.6rem; }} section {{ margin-bottom: 2rem; }}
.title {{ font-size: 16px; font-weight: 600; }} .label {{ font-size: 12px; }} .value {{ font-size: 12px; fill: #555; }}
</style></head><body>
<h1>streamctl report: stack {html.escape(stack_name)}</h1>
<p>From PostgreSQL <code>sales_summary</code>, generated {generated}.</p>
<div class="kpis"><div class="kpi"><b>{transactions:,}</b>transactions</div>
<div class="kpi"><b>{items:,}</b>items sold</div><div class="kpi"><b>{_money(revenue)}</b>revenue</div>
<div class="kpi"><b>{len(data.per_window)}</b>windows</div></div>
{"".join(f"<section>{chart}</section>" for chart in charts)}
</body></html>
"""
