"""`deepcart report`: look at a tagged dataset (and its model comparison) in one HTML file.

The report is a single self-contained HTML file: its charts are matplotlib figures (Agg backend)
embedded as base64 PNG ``data:`` URIs, its style is inline, it has no script and requests nothing
from any host, so it can be mailed, archived or opened offline. Every text in it is HTML-escaped:
titles, stores and review texts are user content.

Sections (:data:`SECTIONS`): an overview; the build's filtering funnel (the counts ``build``
printed, from ``manifest.json``); the rating distribution; the long tail of item popularity and of
user activity; reviews over time; price and category breakdowns; verified versus unverified
purchases; the worst surviving products (at least ``min_engagement`` ratings, lowest mean rating)
with their most helpful complaint (:func:`deepcart.data.mining.worst_reviews`); and, where
``deepcart test`` left ``reports/<tag>/<split>/<model>/metrics.json`` files, the model comparison:
NDCG@K with its bootstrap 95% CI, and NDCG@K against training time, per split, mode and K.

Everything is aggregated by DuckDB over the Parquet files, so memory stays bounded by the number
of distinct values (items, months, counts), never by the number of reviews; review texts are read
only for the handful of worst products.
"""

from deepcart.report.render import DEFAULT_REPORTS_DIR, SECTIONS, WORST_N, write_report

__all__ = ["DEFAULT_REPORTS_DIR", "SECTIONS", "WORST_N", "write_report"]
