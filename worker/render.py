"""How the operator commands print: plain text tables and sentences, or JSON (``--json``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from worker.domain.describe import age, num, pct, when
from worker.domain.money import quantize_str
from worker.domain.strategies import display_name
from worker.readmodels import OrderView, PnlLine, Position
from worker.why import Answer


def as_json(doc: Any) -> str:
    """Decimals as strings (exact), times in ISO 8601, keys sorted."""
    return orjson.dumps(
        doc, default=_json_default, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    ).decode()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return quantize_str(value)  # the same string for the same number on every database
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def table(
    title: str,
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    cell: Callable[[object], str] | None = None,
) -> str:
    """A plain text table; numbers right-aligned; ``cell`` writes one value (default: the
    operator commands' way)."""
    write = cell or _cell
    cells = [[write(v) for v in row] for row in rows]
    widths = [len(h) for h in header]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def line(values: Sequence[str], raw: Sequence[object] | None = None) -> str:
        parts = []
        for i, (value, width) in enumerate(zip(values, widths, strict=True)):
            numeric = raw is not None and isinstance(raw[i], int | Decimal)
            parts.append(value.rjust(width) if numeric else value.ljust(width))
        return "  " + "  ".join(parts).rstrip()

    out = [title, line(header), "  " + "  ".join("-" * w for w in widths)]
    out += [line(c, r) for c, r in zip(cells, rows, strict=True)] or ["  (none)"]
    return "\n".join(out)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return num(value)
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    return str(value)


def _money(d: Decimal | None, places: int = 4) -> Decimal | None:
    """An amount of quote currency, rounded for reading (--json keeps it exact)."""
    return None if d is None else d.quantize(Decimal(1).scaleb(-places))


# -- why ------------------------------------------------------------------------------------------


def why_text(inst_id: str, at: datetime, answers: list[Answer]) -> str:
    out = [f"Why {inst_id} at {when(at)}:"]
    for answer in answers:
        name = display_name(answer.strategy)
        out.append("")
        out.append(f"{answer.strategy} ({name}), {answer.bucket.describe()}: {answer.verdict}")
        out += [f"  - {sentence}." for sentence in answer.sentences] or ["  - nothing recorded."]
    return "\n".join(out)


def why_json(inst_id: str, at: datetime, answers: list[Answer]) -> str:
    return as_json(
        {"inst_id": inst_id, "at": at.isoformat(), "strategies": [a.as_json() for a in answers]}
    )


# -- positions, pnl, orders ---------------------------------------------------------------------


POSITION_HEADER = (
    "lot", "instrument", "strategy", "state", "size", "avg px", "last", "value", "unrealised",
    "%", "opened", "time exit",
)  # fmt: skip


def positions_text(positions: list[Position], now: datetime) -> str:
    rows = []
    for p in positions:
        lot = p.lot
        change = p.unrealised_pct
        rows.append(
            (
                lot.id,
                lot.inst_id,
                lot.strategy,
                lot.state,
                lot.remaining,
                lot.avg_px,
                p.last,
                _money(p.value),
                _money(p.unrealised),
                pct(change) if change is not None else "-",
                f"{age((now - lot.opened_at).total_seconds())} ago",
                lot.exit_after,
            )
        )
    out = [table("Open positions (unsold lots, valued at the last price)", POSITION_HEADER, rows)]
    total = [p.unrealised for p in positions if p.unrealised is not None]
    if total:
        out.append(f"  unrealised total: {num(_money(sum(total, Decimal(0))) or Decimal(0))}")
    out += [f"  {p.lot.inst_id}: no last price ({p.error})" for p in positions if p.last is None]
    return "\n".join(dict.fromkeys(out))


def positions_json(positions: list[Position]) -> str:
    return as_json(
        [
            {
                "lot_id": p.lot.id,
                "inst_id": p.lot.inst_id,
                "strategy": p.lot.strategy,
                "state": p.lot.state,
                "size": p.lot.remaining,
                "avg_px": p.lot.avg_px,
                "cost": p.cost_remaining,
                "last": p.last,
                "value": p.value,
                "unrealised": p.unrealised,
                "opened_at": p.lot.opened_at.isoformat(),
                "exit_after": p.lot.exit_after.isoformat(),
                "take_profit_px": p.lot.take_profit_px,
                "error": p.error,
            }
            for p in positions
        ]
    )


def pnl_text(lines: list[PnlLine], since: datetime | None) -> str:
    span = f"since {when(since)}" if since else "all time"
    rows = [
        (
            ln.strategy,
            ln.inst_id,
            ln.lots,
            _money(ln.cost),
            _money(ln.proceeds),
            _money(ln.fees),
            _money(ln.pnl),
        )
        for ln in lines
    ]
    by_strategy: dict[str, list[PnlLine]] = {}
    for ln in lines:
        by_strategy.setdefault(ln.strategy, []).append(ln)
    for strategy, group in by_strategy.items():
        rows.append(
            (
                f"{strategy} total",
                "",
                sum(ln.lots for ln in group),
                _money(sum((ln.cost for ln in group), Decimal(0))),
                _money(sum((ln.proceeds for ln in group), Decimal(0))),
                _money(sum((ln.fees for ln in group), Decimal(0))),
                _money(sum((ln.pnl for ln in group), Decimal(0))),
            )
        )
    header = ("strategy", "instrument", "lots", "cost", "proceeds", "fees", "pnl")
    out = table(f"Realised P&L of closed lots, {span} (fees included)", header, rows)
    if lines:
        total = sum((ln.pnl for ln in lines), Decimal(0))
        out += f"\n  total: {num(_money(total) or Decimal(0))}"
    return out


def pnl_json(lines: list[PnlLine], since: datetime | None) -> str:
    return as_json(
        {
            "since": since.isoformat() if since else None,
            "lines": [
                {
                    "strategy": ln.strategy,
                    "inst_id": ln.inst_id,
                    "lots": ln.lots,
                    "cost": ln.cost,
                    "proceeds": ln.proceeds,
                    "fees": ln.fees,
                    "pnl": ln.pnl,
                }
                for ln in lines
            ],
            "total": sum((ln.pnl for ln in lines), Decimal(0)),
        }
    )


ORDER_HEADER = (
    "id", "created", "instrument", "strategy", "side", "purpose", "state", "px", "sz", "filled",
    "avg px", "clOrdId", "last error",
)  # fmt: skip


def orders_text(found: list[OrderView]) -> str:
    rows = [
        (
            o.id,
            o.created_at,
            o.inst_id,
            o.strategy,
            o.side,
            o.purpose,
            o.state,
            o.px,
            o.sz,
            o.filled_sz,
            o.avg_px if o.filled_sz else None,
            o.cl_ord_id,
            o.last_error[:40],
        )
        for o in found
    ]
    return table("Orders (newest first)", ORDER_HEADER, rows)


def orders_json(found: list[OrderView]) -> str:
    return as_json(
        [
            {
                "id": o.id,
                "cl_ord_id": o.cl_ord_id,
                "inst_id": o.inst_id,
                "strategy": o.strategy,
                "side": o.side,
                "purpose": o.purpose,
                "state": o.state,
                "px": o.px,
                "sz": o.sz,
                "filled_sz": o.filled_sz,
                "avg_px": o.avg_px,
                "fee": o.fee,
                "fee_ccy": o.fee_ccy,
                "lot_id": o.lot_id,
                "created_at": o.created_at.isoformat(),
                "updated_at": o.updated_at.isoformat(),
                "last_error": o.last_error,
            }
            for o in found
        ]
    )


# -- status ------------------------------------------------------------------------------------


def status_text(doc: dict[str, Any]) -> str:
    out = [f"Limitflow status at {when(doc['now'])} (counts since {when(doc['since'])})", ""]
    paused = doc["paused"]
    out.append("Buys: " + ("; ".join(paused) if paused else "running (no pause switch is on)"))
    recon = doc["reconciliation"]
    out.append(
        "Periodic reconciliation: "
        + (
            f"on, every {recon['interval_seconds']} s"
            if recon["periodic"]
            else "OFF (MEMORY_SYNC_INTERVAL_SECONDS=0: only at worker start and on stream connects)"
        )
    )
    feed = doc["feed_last_record"]
    out.append(
        f"Feed: last record {when(feed)}" if feed else "Feed: no record yet (closest approaches)"
    )
    out.append("")
    counts = doc["window"]
    out.append(table("Signals", ("signal", "count"), sorted(counts["signals"].items())))
    out.append("")
    out.append(table("Orders created", ("order", "count"), sorted(counts["orders"].items())))
    out.append(f"  fills: {counts['fills']}")
    out.append("")
    now_rows = [("open orders, " + side, n) for side, n in sorted(doc["open_orders"].items())]
    now_rows += [("lots " + state, n) for state, n in sorted(doc["lots"].items())]
    out.append(table("Now", ("what", "count"), now_rows))
    out.append("")
    attention = doc["needs_attention"]
    out.append(
        table(
            "Lots that need attention",
            ("lot", "instrument", "strategy", "remaining", "refusals", "last refusal", "settle"),
            [
                (
                    a["lot_id"],
                    a["inst_id"],
                    a["strategy"],
                    Decimal(a["remaining"]),
                    a["exit_refusals"],
                    a["last_refusal"][:40],
                    f"python -m worker settle-lot {a['lot_id']} ...",
                )
                for a in attention
            ],
        )
    )
    out.append("")
    reports = doc["last_reconcile"]
    rows = []
    for task, report in sorted(reports.items()):
        figures = report["report"]
        counts_text = ", ".join(
            f"{k} {v}" for k, v in figures.items() if k != "errors" and v not in (0, "ok")
        )
        errors = ", ".join(f"{k} {v}" for k, v in figures.get("errors", {}).items())
        rows.append((task, report["finished_at"], counts_text or "nothing to do", errors or "-"))
    out.append(table("Last reconcile runs", ("task", "finished", "report", "errors"), rows))
    return "\n".join(out)
