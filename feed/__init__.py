"""The feed: watch OKX market data and turn it into buy and sell signals.

``python -m feed`` runs the daemon (see ``feed.daemon``); the strategies in
``feed.strategies`` are pure functions over a small per-instrument state.
"""
