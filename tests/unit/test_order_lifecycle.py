"""The transition table over every state and event pair, and its invariants."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.domain.errors import IllegalTransition
from worker.domain.orders import (
    INFERRED_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    OrderEvent,
    OrderState,
    Outcome,
    Side,
    apply_event,
    event_for_exchange_state,
)
from worker.domain.results import BLOCKERS, BUSY, EXIT_DONE, ExitResult, SkipReason, Verdict

S, E = OrderState, OrderEvent

EXPECTED = {
    (S.PENDING_SUBMIT, E.ACCEPTED): S.LIVE,
    (S.PENDING_SUBMIT, E.PARTIALLY_FILLED): S.PARTIALLY_FILLED,
    (S.PENDING_SUBMIT, E.FILLED): S.FILLED,
    (S.PENDING_SUBMIT, E.CANCELED): S.CANCELED,
    (S.PENDING_SUBMIT, E.REJECTED): S.REJECTED,
    (S.PENDING_SUBMIT, E.NOT_FOUND): S.FAILED,
    (S.LIVE, E.ACCEPTED): S.LIVE,
    (S.LIVE, E.PARTIALLY_FILLED): S.PARTIALLY_FILLED,
    (S.LIVE, E.FILLED): S.FILLED,
    (S.LIVE, E.CANCELED): S.CANCELED,
    (S.LIVE, E.REJECTED): None,
    (S.LIVE, E.NOT_FOUND): S.CANCELED,
    (S.PARTIALLY_FILLED, E.ACCEPTED): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, E.PARTIALLY_FILLED): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, E.FILLED): S.FILLED,
    (S.PARTIALLY_FILLED, E.CANCELED): S.CANCELED,
    (S.PARTIALLY_FILLED, E.REJECTED): None,
    (S.PARTIALLY_FILLED, E.NOT_FOUND): S.CANCELED,
    (S.FILLED, E.ACCEPTED): S.FILLED,
    (S.FILLED, E.PARTIALLY_FILLED): S.FILLED,
    (S.FILLED, E.FILLED): S.FILLED,
    (S.FILLED, E.CANCELED): None,
    (S.FILLED, E.REJECTED): None,
    (S.FILLED, E.NOT_FOUND): S.FILLED,
    (S.CANCELED, E.ACCEPTED): S.CANCELED,
    (S.CANCELED, E.PARTIALLY_FILLED): S.CANCELED,
    (S.CANCELED, E.FILLED): None,
    (S.CANCELED, E.CANCELED): S.CANCELED,
    (S.CANCELED, E.REJECTED): None,
    (S.CANCELED, E.NOT_FOUND): S.CANCELED,
    (S.REJECTED, E.REJECTED): S.REJECTED,
    (S.REJECTED, E.NOT_FOUND): S.REJECTED,
    (S.FAILED, E.REJECTED): S.FAILED,
    (S.FAILED, E.NOT_FOUND): S.FAILED,
}
# Rejected and failed are inferences: the exchange's facts take the order back.
for state in (S.REJECTED, S.FAILED):
    EXPECTED[(state, E.ACCEPTED)] = S.LIVE
    EXPECTED[(state, E.PARTIALLY_FILLED)] = S.PARTIALLY_FILLED
    EXPECTED[(state, E.FILLED)] = S.FILLED
    EXPECTED[(state, E.CANCELED)] = S.CANCELED


def test_table_covers_every_pair() -> None:
    assert set(TRANSITIONS) == set(OrderState)
    for state in OrderState:
        assert set(TRANSITIONS[state]) == set(OrderEvent)
    assert len(EXPECTED) == len(OrderState) * len(OrderEvent)


@pytest.mark.parametrize(("state", "event"), list(itertools.product(OrderState, OrderEvent)))
def test_every_pair(state: OrderState, event: OrderEvent) -> None:
    expected = EXPECTED[(state, event)]
    if expected is None:
        with pytest.raises(IllegalTransition):
            apply_event(state, event)
    else:
        assert apply_event(state, event) is expected


def test_terminal_facts_never_leave() -> None:
    for state in TERMINAL_STATES - INFERRED_STATES:
        for event in OrderEvent:
            outcome, _ = TRANSITIONS[state][event]
            assert outcome is not Outcome.MOVE


def test_inferred_states_yield_to_every_exchange_fact_and_only_to_those() -> None:
    assert {s for s in OrderState if s.is_inferred} == {S.REJECTED, S.FAILED}
    for state in INFERRED_STATES:
        assert state.is_terminal  # they free the slot until the exchange says otherwise
        for event in OrderEvent:
            outcome, _ = TRANSITIONS[state][event]
            exchange_fact = event not in (E.REJECTED, E.NOT_FOUND)
            assert (outcome is Outcome.MOVE) is exchange_fact


RANK = {
    S.PENDING_SUBMIT: 0,
    S.LIVE: 1,
    S.PARTIALLY_FILLED: 2,
    S.FILLED: 3,
    S.CANCELED: 3,
    # An inference ranks with the intent it was drawn from: any fact is news beyond it.
    S.REJECTED: 0,
    S.FAILED: 0,
}


@given(st.lists(st.sampled_from(list(OrderEvent)), max_size=30))
def test_random_news_never_moves_backwards(events: list[OrderEvent]) -> None:
    state = S.PENDING_SUBMIT
    for event in events:
        try:
            new = apply_event(state, event)
        except IllegalTransition:
            continue
        assert RANK[new] >= RANK[state]
        if state.is_terminal and not state.is_inferred:
            assert new is state
        state = new


@pytest.mark.parametrize(
    ("state", "terminal"),
    [
        (S.PENDING_SUBMIT, False),
        (S.LIVE, False),
        (S.PARTIALLY_FILLED, False),
        (S.FILLED, True),
        (S.CANCELED, True),
        (S.REJECTED, True),
        (S.FAILED, True),
    ],
)
def test_is_terminal(state: OrderState, terminal: bool) -> None:
    assert state.is_terminal is terminal


@pytest.mark.parametrize(
    ("reported", "event"),
    [
        (S.LIVE, E.ACCEPTED),
        (S.PARTIALLY_FILLED, E.PARTIALLY_FILLED),
        (S.FILLED, E.FILLED),
        (S.CANCELED, E.CANCELED),
    ],
)
def test_each_state_the_exchange_reports_maps_to_its_event(
    reported: OrderState, event: OrderEvent
) -> None:
    assert event_for_exchange_state(reported) is event


@pytest.mark.parametrize("state", [S.PENDING_SUBMIT, S.REJECTED, S.FAILED])
def test_states_the_exchange_never_reports_have_no_event(state: OrderState) -> None:
    with pytest.raises(KeyError):
        event_for_exchange_state(state)


def test_an_illegal_transition_names_the_state_and_the_event() -> None:
    with pytest.raises(IllegalTransition, match="order in state filled cannot take event canceled"):
        apply_event(S.FILLED, E.CANCELED)


def test_results_and_sides_keep_their_words() -> None:
    """The enums' values are what the database, the logs and JSON hold: never renamed."""
    assert [s.value for s in Side] == ["buy", "sell"]
    assert [v.value for v in Verdict] == [
        "missing",
        "unknown",
        "gone",
        "foreign",
        "conflict",
        "invalid",
    ]
    assert [r.value for r in ExitResult] == [
        "exit_placed",
        "take_profit_placed",
        "exiting",
        "resting",
        "sold_meanwhile",
        "dust",
        "closed",
        "exit_rejected",
        "needs_attention",
    ]
    assert {r.value for r in EXIT_DONE} == {
        "closed",
        "exiting",
        "sold_meanwhile",
        "dust",
        "exit_placed",
    }
    assert [r.value for r in SkipReason] == [
        "duplicate",
        "slot_busy",
        "unsold_lot",
        "cooldown",
        "paused",
        "expired",
        "below_min_size",
        "risk_limit",
        "disabled",
        "cached_busy",
        "invalid_instrument",
        "exchange_error",
        "invalid_message",
    ]
    assert [b.value for b in BLOCKERS] == [
        "duplicate",
        "slot_busy",
        "unsold_lot",
        "cooldown",
        "paused",
    ]
    assert {b.value for b in BUSY} == {"slot_busy", "unsold_lot", "cooldown"}
    assert f"{Verdict.UNKNOWN}" == "unknown" and str(ExitResult.DUST) == "dust"
