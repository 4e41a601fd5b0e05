"""Requests at once to one server: narrow while it is near, opened once when it is far."""

from __future__ import annotations

import threading
import time

from torrip.width import FAR_WAIT, LOCAL_WAIT, Stopwatch, Width


def _most_at_once(width: Width, requests: int) -> int:
    """Run ``requests`` threads through ``width``, each holding it a moment; the most that
    were inside at once."""
    inside = most = 0
    lock = threading.Lock()

    def request() -> None:
        nonlocal inside, most
        with width:
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.02)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=request) for _ in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return most


def test_near_until_a_wait_says_far() -> None:
    told: list[tuple[float, int]] = []
    width = Width(2, 6, on_widen=lambda waited, extra: told.append((waited, extra)))
    assert not width.measured
    assert _most_at_once(width, 8) == 2
    width.observe(FAR_WAIT)
    assert width.measured and told == [(FAR_WAIT, 4)]
    assert _most_at_once(width, 8) == 6


def test_only_the_first_observation_counts() -> None:
    told: list[tuple[float, int]] = []
    width = Width(2, 6, on_widen=lambda waited, extra: told.append((waited, extra)))
    width.observe(FAR_WAIT / 4)  # near: stays narrow for good
    width.observe(1.0)
    assert width.measured and told == []
    assert _most_at_once(width, 8) == 2


def test_near_never_exceeds_far() -> None:
    width = Width(4, 2)
    assert (width.near, width.far) == (2, 2)
    width.observe(1.0)  # nothing to open
    assert _most_at_once(width, 6) == 2


def test_a_stopwatch_counts_waiting_not_this_processs_work() -> None:
    asleep = Stopwatch()
    time.sleep(0.03)
    assert asleep.waited() >= 0.02
    busy = Stopwatch()
    deadline = time.perf_counter() + 0.03
    while time.perf_counter() < deadline:
        sum(range(1000))
    assert busy.waited() < 0.01


def test_requests_timed_before_arming_do_not_decide() -> None:
    """An unarmed width (torrip's early index requests, which run beside the planner's
    imports) decides on the first request timed after ``arm``."""
    width = Width(2, 6, armed=False)
    early = Stopwatch()
    width.observe_since(early)
    assert not width.measured
    width.arm()
    time.sleep(FAR_WAIT * 2)
    width.observe_since(early)  # started before arming: its wait says nothing
    assert not width.measured
    after = Stopwatch()
    time.sleep(FAR_WAIT * 2)  # off the CPU, as a far server's answer
    width.observe_since(after)
    assert width.measured
    assert _most_at_once(width, 8) == 6


def test_a_server_that_answers_at_once_gets_one_request_at_a_time() -> None:
    told: list[tuple[float, int]] = []
    width = Width(3, 16, local=1, on_widen=lambda waited, extra: told.append((waited, extra)))
    assert _most_at_once(width, 8) == 3  # undecided: near
    width.observe(LOCAL_WAIT / 2)
    assert width.measured and told == []
    assert _most_at_once(width, 8) == 1


def test_narrowing_waits_for_the_requests_in_flight() -> None:
    width = Width(3, 16, local=1)
    width.__enter__()
    width.__enter__()  # two in flight when the first answer says "local"
    width.observe(0.0)
    entered = threading.Event()

    def third() -> None:
        with width:
            entered.set()

    thread = threading.Thread(target=third)
    thread.start()
    assert not entered.wait(0.1)  # 2 in flight, limit 1: it waits
    width.__exit__(None, None, None)
    assert not entered.wait(0.1)  # still 1 in flight
    width.__exit__(None, None, None)
    assert entered.wait(5)
    thread.join()


def test_a_near_server_keeps_the_near_width_even_with_a_local_one() -> None:
    width = Width(3, 16, local=1)
    width.observe((LOCAL_WAIT + FAR_WAIT) / 2)
    assert _most_at_once(width, 8) == 3
