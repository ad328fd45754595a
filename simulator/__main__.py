"""``python -m simulator``: run the OKX v5 simulator until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from simulator.config import DEFAULT_INSTRUMENTS, SimConfig
from simulator.replay import ReplayError
from simulator.server import Server
from worker.settings import SIM_API_KEY, SIM_API_PASSPHRASE, SIM_API_SECRET


def parse_args(argv: list[str] | None = None) -> SimConfig:
    parser = argparse.ArgumentParser(
        prog="python -m simulator", description="Run a local OKX v5 simulator (REST + websockets)."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18080, help="0 picks a free port")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--seed", type=int, default=1, help="seed of the market generator")
    source.add_argument("--replay", type=Path, help="JSONL file of recorded OKX pushes")
    parser.add_argument(
        "--speed", type=float, default=1.0,
        help="simulated seconds per real second (0: replay as fast as possible)",
    )  # fmt: skip
    parser.add_argument("--paused", action="store_true", help="start with the clock paused")
    parser.add_argument("--instruments", default=",".join(DEFAULT_INSTRUMENTS))
    parser.add_argument(
        "--instrument-rules", default="",
        help="rule overrides INST:tickSz:lotSz:minSz, comma-separated",
    )  # fmt: skip
    parser.add_argument("--api-key", default=SIM_API_KEY)
    parser.add_argument("--api-secret", default=SIM_API_SECRET)
    parser.add_argument("--passphrase", default=SIM_API_PASSPHRASE)
    parser.add_argument("--start-usdt", default="10000", help="starting USDT balance")
    parser.add_argument("--fee-rate", default="0.001")
    parser.add_argument("--idle-timeout", type=float, default=30.0, help="websocket idle close (s)")
    parser.add_argument(
        "--liquidity-usdt", default="5000", help="quote amount offered per side at each price step"
    )
    parser.add_argument(
        "--history-retention", type=float, default=7200.0,
        help="simulated seconds a canceled, never-filled order stays in history",
    )  # fmt: skip
    parser.add_argument("--step-seconds", type=float, default=1.0, help="generator step")
    parser.add_argument("--warmup-hours", type=int, default=24, help="generated past at start")
    parser.add_argument(
        "--shock-rate", type=float, default=0.05,
        help="sharp drops per instrument per simulated hour",
    )  # fmt: skip
    parser.add_argument(
        "--dump-rate", type=float, default=0.02, help="market-wide dumps per simulated hour"
    )
    parser.add_argument(
        "--event-time-scale", type=float, default=1.0,
        help="multiplies how long drops fall, hold and recover (0.1: ten times faster)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the simulator listens on loopback only (127.0.0.1)")
    if args.speed < 0:
        parser.error("--speed must be >= 0")
    if args.step_seconds <= 0 or args.warmup_hours < 0 or args.idle_timeout <= 0:
        parser.error("--step-seconds and --idle-timeout must be > 0, --warmup-hours >= 0")
    if args.shock_rate < 0 or args.dump_rate < 0 or args.event_time_scale <= 0:
        parser.error("--shock-rate and --dump-rate must be >= 0, --event-time-scale > 0")
    try:
        return _config(args)
    except (ArithmeticError, ValueError) as exc:
        parser.error(f"bad option value: {exc}")


def _config(args: argparse.Namespace) -> SimConfig:
    config = SimConfig.from_options(
        host=args.host,
        port=args.port,
        seed=args.seed,
        replay=args.replay,
        speed=args.speed,
        paused=args.paused,
        instruments=args.instruments,
        instrument_rules=args.instrument_rules,
        api_key=args.api_key,
        api_secret=args.api_secret,
        passphrase=args.passphrase,
        start_usdt=args.start_usdt,
        fee_rate=args.fee_rate,
        ws_idle_timeout=args.idle_timeout,
        step_liquidity_usdt=args.liquidity_usdt,
        history_retention_seconds=args.history_retention,
        step_seconds=args.step_seconds,
        warmup_hours=args.warmup_hours,
        shock_rate_per_hour=args.shock_rate,
        dump_rate_per_hour=args.dump_rate,
        event_time_scale=args.event_time_scale,
    )
    for number in (config.start_usdt, config.fee_rate, config.step_liquidity_usdt):
        if not number.is_finite() or number < 0:
            raise ValueError(f"{number} is not a non-negative number")
    return config


async def serve(config: SimConfig) -> None:
    server = Server(config)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    config = parse_args(argv)
    try:
        asyncio.run(serve(config))
    except (ReplayError, ValueError) as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"simulator: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
