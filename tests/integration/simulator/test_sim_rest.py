"""REST over a real socket: envelopes, auth, trading endpoints, pagination, control API."""

from __future__ import annotations

import httpx
import pytest
from sim_socket_helpers import SignedClient, limit_order

from simulator import SimulatorHandle
from simulator.control import SimControl, SimControlError
from worker.exchange.okx.signing import rest_timestamp


def test_public_endpoints(sim: SimulatorHandle) -> None:
    with httpx.Client(base_url=sim.rest_url) as http:
        insts = http.get("/api/v5/public/instruments", params={"instType": "SPOT"}).json()
        assert insts["code"] == "0" and len(insts["data"]) == 3
        one = http.get(
            "/api/v5/public/instruments", params={"instType": "SPOT", "instId": "ETH-USDT"}
        ).json()
        assert [i["instId"] for i in one["data"]] == ["ETH-USDT"]
        assert http.get("/api/v5/public/time").json()["data"][0]["ts"].isdigit()
        assert http.get("/api/v5/system/status").json() == {"code": "0", "msg": "", "data": []}
        tickers = http.get("/api/v5/market/tickers", params={"instType": "SPOT"}).json()["data"]
        assert {t["instId"] for t in tickers} == {"BTC-USDT", "ETH-USDT", "DOGE-USDT"}
        ticker = http.get("/api/v5/market/ticker", params={"instId": "BTC-USDT"}).json()
        assert isinstance(ticker["data"][0]["last"], str)
        candles = http.get(
            "/api/v5/market/candles", params={"instId": "BTC-USDT", "bar": "1H", "limit": "2"}
        ).json()["data"]
        assert len(candles) == 2 and int(candles[0][0]) > int(candles[1][0])
        missing = http.get("/api/v5/market/ticker", params={"instId": "NOPE-USDT"}).json()
        assert missing["code"] == "51001"
        assert (
            http.get("/api/v5/market/candles", params={"instId": "BTC-USDT", "bar": "7H"}).json()[
                "code"
            ]
            == "51000"
        )


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"OK-ACCESS-KEY": "wrong"}, "50111"),
        ({"OK-ACCESS-PASSPHRASE": "wrong"}, "50105"),
        ({"OK-ACCESS-SIGN": "bad"}, "50113"),
        ({"OK-ACCESS-TIMESTAMP": "2020-01-01T00:00:00.000Z"}, "50102"),
    ],
)
def test_private_auth_failures_are_401(okx: SignedClient, extra: dict[str, str], code: str) -> None:
    response = okx.send("GET", "/api/v5/account/balance", **extra)
    assert response.status_code == 401
    assert response.json()["code"] == code


def test_stale_signature_timestamp(okx: SignedClient) -> None:
    old = rest_timestamp().replace(rest_timestamp()[:4], "2001")
    assert okx.send("GET", "/api/v5/account/balance", timestamp=old).json()["code"] == "50102"


def test_place_get_cancel_round_trip(okx: SignedClient, ctl: SimControl) -> None:
    ctl.price("BTC-USDT", "100")
    placed = okx.post("/api/v5/trade/order", limit_order(px="90", clOrdId="rt1"))
    assert placed["code"] == "0" and placed["inTime"].isdigit() and placed["outTime"].isdigit()
    ord_id = placed["data"][0]["ordId"]
    by_cl = okx.get("/api/v5/trade/order", instId="BTC-USDT", clOrdId="rt1")
    assert by_cl["data"][0]["ordId"] == ord_id and by_cl["data"][0]["state"] == "live"
    canceled = okx.post("/api/v5/trade/cancel-order", {"instId": "BTC-USDT", "ordId": ord_id})
    assert canceled["data"][0]["sCode"] == "0"
    again = okx.post("/api/v5/trade/cancel-order", {"instId": "BTC-USDT", "ordId": ord_id})
    assert (again["code"], again["data"][0]["sCode"]) == ("1", "51400")
    assert (
        okx.get("/api/v5/trade/order", instId="BTC-USDT", ordId=ord_id)["data"][0]["state"]
        == "canceled"
    )
    gone = okx.get("/api/v5/trade/order", instId="BTC-USDT", ordId="1234567890123456789")
    assert (gone["code"], gone["data"]) == ("51603", [])


def test_refused_single_order_uses_code_1(okx: SignedClient, ctl: SimControl) -> None:
    result = okx.post("/api/v5/trade/order", limit_order(sz="0.000000001"))
    assert result["code"] == "1"
    assert result["data"][0]["sCode"] == "51121"
    assert ctl.orders()["orders"] == []


def test_batch_orders_partial_success_and_cancel_batch(okx: SignedClient, ctl: SimControl) -> None:
    ctl.price("BTC-USDT", "100")
    batch = [limit_order(px="90", clOrdId="bo1"), limit_order(px="90.05", clOrdId="bo2")]
    result = okx.post("/api/v5/trade/batch-orders", batch)
    assert result["code"] == "2"
    assert [d["sCode"] for d in result["data"]] == ["0", "51000"]
    too_many = okx.post("/api/v5/trade/batch-orders", [limit_order()] * 21)
    assert too_many["code"] == "51000"
    ord_id = result["data"][0]["ordId"]
    cancels = [{"instId": "BTC-USDT", "ordId": ord_id}, {"instId": "BTC-USDT", "ordId": "1"}]
    canceled = okx.post("/api/v5/trade/cancel-batch-orders", cancels)
    assert canceled["code"] == "2"


def test_python_okx_style_body_is_accepted(okx: SignedClient, ctl: SimControl) -> None:
    ctl.price("BTC-USDT", "100")
    body = limit_order(px="90", clOrdId="", tag="", tgtCcy="")
    body["attachAlgoOrds"] = None  # type: ignore[assignment]
    assert okx.post("/api/v5/trade/order", body)["code"] == "0"


def test_orders_pending_pages_newest_first(okx: SignedClient, ctl: SimControl) -> None:
    ctl.price("BTC-USDT", "100")
    ids = [
        okx.post("/api/v5/trade/order", limit_order(px="80"))["data"][0]["ordId"] for _ in range(5)
    ]
    page = okx.get("/api/v5/trade/orders-pending", instType="SPOT", limit="2")["data"]
    assert [o["ordId"] for o in page] == ids[::-1][:2]
    older = okx.get("/api/v5/trade/orders-pending", after=page[-1]["ordId"])["data"]
    assert [o["ordId"] for o in older] == ids[::-1][2:]
    newer = okx.get("/api/v5/trade/orders-pending", before=ids[2])["data"]
    assert [o["ordId"] for o in newer] == [ids[4], ids[3]]
    assert okx.get("/api/v5/trade/orders-pending", instId="ETH-USDT")["data"] == []
    assert okx.get("/api/v5/trade/orders-pending", limit="101")["code"] == "51000"


def test_history_keeps_fills_and_drops_old_unfilled_cancels(
    okx: SignedClient, ctl: SimControl
) -> None:
    ctl.price("BTC-USDT", "100")
    assert okx.get("/api/v5/trade/orders-history")["code"] == "50014"
    filled = okx.post("/api/v5/trade/order", limit_order(px="100", clOrdId="hf"))["data"][0]
    rest = okx.post("/api/v5/trade/order", limit_order(px="90", clOrdId="hc"))["data"][0]
    okx.post("/api/v5/trade/cancel-order", {"instId": "BTC-USDT", "clOrdId": "hc"})
    history = okx.get("/api/v5/trade/orders-history", instType="SPOT")["data"]
    assert {o["ordId"] for o in history} == {filled["ordId"], rest["ordId"]}
    only = okx.get("/api/v5/trade/orders-history", instType="SPOT", state="filled")["data"]
    assert [o["ordId"] for o in only] == [filled["ordId"]]
    ctl.advance(7201)
    ctl.price("BTC-USDT", "100")
    history = okx.get("/api/v5/trade/orders-history", instType="SPOT")["data"]
    assert [o["ordId"] for o in history] == [filled["ordId"]]
    gone = okx.get("/api/v5/trade/order", instId="BTC-USDT", clOrdId="hc")
    assert gone["code"] == "51603"


def test_balance_tracks_frozen_and_fills(okx: SignedClient, ctl: SimControl) -> None:
    ctl.price("BTC-USDT", "100")
    okx.post("/api/v5/trade/order", limit_order(px="50", sz="2"))
    details = {d["ccy"]: d for d in okx.get("/api/v5/account/balance")["data"][0]["details"]}
    assert details["USDT"]["frozenBal"] == "100"
    assert details["USDT"]["availBal"] == "9900"
    okx.post("/api/v5/trade/order", limit_order(px="100", sz="1"))
    details = {d["ccy"]: d for d in okx.get("/api/v5/account/balance")["data"][0]["details"]}
    assert details["BTC"]["cashBal"] == "0.999"  # 1 minus the 0.1 % fee in BTC


def test_control_api_fill_forget_and_placements(okx: SignedClient, ctl: SimControl) -> None:
    ctl.price("BTC-USDT", "100")
    okx.post("/api/v5/trade/order", limit_order(px="90", sz="0.01", clOrdId="cf1"))
    part = ctl.fill(cl_ord_id="cf1", sz="0.004")
    assert (part["state"], part["accFillSz"]) == ("partially_filled", "0.004")
    done = ctl.fill(cl_ord_id="cf1")
    assert done["state"] == "filled"
    okx.post("/api/v5/trade/order", limit_order(px="90", sz="0.01", clOrdId="cf1"))
    assert ctl.placements("cf1") == 2
    ctl.forget(ord_id=done["ordId"])
    assert okx.get("/api/v5/trade/order", instId="BTC-USDT", ordId=done["ordId"])["code"] == "51603"
    with pytest.raises(SimControlError):
        ctl.fill(cl_ord_id="nope")
    status = ctl.status()
    assert status["mode"] == "generator" and status["paused"] is True


def test_control_price_moves_market_and_clock(sim: SimulatorHandle, ctl: SimControl) -> None:
    ticker = ctl.price("ETH-USDT", bid="2999.99", ask="3000.01", last="3000")
    assert (ticker["bidPx"], ticker["askPx"]) == ("2999.99", "3000.01")
    before = int(ctl.status()["now"])
    after = int(ctl.advance(60)["now"])
    assert after - before == 60_000
