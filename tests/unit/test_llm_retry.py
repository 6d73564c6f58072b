"""The one retry engine (`kdeps.llm.retry`) that LLM calls and `httpClient` share."""

from __future__ import annotations

import email.utils
import time

from kdeps.llm.retry import RetryPolicy, retry_after


def test_retry_after_reads_ms_seconds_and_dates_in_any_case() -> None:
    assert retry_after({"retry-after-ms": "250", "Retry-After": "9"}) == 0.25
    assert retry_after({"Retry-After": "2"}) == 2.0
    later = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 55 < (retry_after({"RETRY-AFTER": later}) or 0) <= 60
    assert retry_after({"Retry-After": "soon"}) is None
    assert retry_after({}) is None


def test_next_wait_honours_the_server_then_backs_off_within_the_deadline() -> None:
    policy = RetryPolicy(max_attempts=3, initial_delay=1.0, max_delay=5.0)
    assert policy.next_wait(1, 4.0, left=100) == 4.0              # server's wait, within max_delay
    assert 0.75 <= (policy.next_wait(1, 50.0, left=100) or 0) <= 1.0  # too long: jittered backoff
    assert 1.5 <= (policy.next_wait(2, None, left=100) or 0) <= 2.0   # exponential
    assert policy.next_wait(1, 10.0, left=8) is None              # server wants us after the deadline
    assert policy.next_wait(1, None, left=0.5) is None            # backoff would pass the deadline
    assert policy.next_wait(3, None, left=100) is None            # attempts used up


def test_policy_from_a_retry_block() -> None:
    policy = RetryPolicy.from_config({"maxAttempts": 5, "initialDelay": 0.5, "backoffMultiplier": 3})
    assert (policy.max_attempts, policy.initial_delay, policy.backoff_multiplier) == (5, 0.5, 3.0)
