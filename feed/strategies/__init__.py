"""The four buy strategies and the exits, as pure functions over ``feed.state``.

No I/O and no clocks: every function gets the tick (with the exchange's timestamp) and the
state, and returns what should be bought or sold. Module per strategy:

- ``hourly``  ``hourly_limit_ws`` (Original): a drop below the UTC hour's open
- ``gap``     ``original_gap`` (Gap): a drop below the trailing window's high
- ``stable``  ``stable_buy_ws`` (Stable): a dip below the UTC day's open in a calm market
- ``batch``   ``batch_buy_ws`` (Batch): many instruments down at once, buy the deepest
- ``exits``   stop loss and time exit for the feed's view of open positions
- ``wiring``  which evaluator computes each strategy id of ``worker.domain.strategies``
"""
