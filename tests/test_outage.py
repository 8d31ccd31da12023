"""The outage state machine: every transition, hysteresis, 429, SLO, monitor blindness."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from probes.config import ProbeSettings, parse_config
from probes.timestamps import iso
from store.health import State
from store.outage import (
    BlindEnded,
    BlindStarted,
    Coordinator,
    Counted,
    MachineState,
    Observation,
    OutageRules,
    Outcome,
    TargetMachine,
    Transition,
    classify,
    network_path,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def at(i: int) -> str:
    """Probe i's start, 30 s apart."""
    return iso(T0 + timedelta(seconds=30 * i))


def ok(i: int, target: str = "a", ttft: float = 100.0) -> Observation:
    return Observation(target, at(i), "ok", ttft_ms=ttft)


def fail(i: int, target: str = "a", kind: str = "server_error") -> Observation:
    return Observation(target, at(i), "error", kind, f"HTTP 500, {kind}")


def run(m: TargetMachine, observations: list[Observation]) -> list[Transition]:
    out = []
    for o in observations:
        tr = m.observe(o)
        if tr is not None:
            out.append(tr)
    return out


def test_first_success_is_up() -> None:
    m = TargetMachine("a", OutageRules())
    (tr,) = run(m, [ok(0)])
    assert (tr.from_state, tr.to_state, tr.at) == (State.NO_DATA, State.UP, at(0))


def test_down_after_three_failures_backdated_to_the_first() -> None:
    m = TargetMachine("a", OutageRules())
    trs = run(m, [ok(0), fail(1), fail(2)])
    assert [t.to_state for t in trs] == [State.UP]  # two failures: still up (pending)
    assert m.s.fail_streak == 2
    (tr,) = run(m, [fail(3)])
    assert tr.to_state is State.DOWN and tr.from_state is State.UP
    assert tr.at == at(1), "the outage began with the first failure of the streak"
    assert tr.cause_kind == "server_error" and "HTTP 500, server_error" in tr.cause_message
    assert (tr.probes_moved, tr.failures_moved) == (3, 3)
    assert (tr.prev_probes, tr.prev_failures) == (1, 0)


def test_hysteresis_one_success_is_not_enough() -> None:
    m = TargetMachine("a", OutageRules())
    run(m, [ok(0), fail(1), fail(2), fail(3)])
    assert m.s.state is State.DOWN
    assert run(m, [ok(4), fail(5), ok(6)]) == []  # flapping: stays down
    assert m.s.state is State.DOWN
    (tr,) = run(m, [ok(7)])
    assert (tr.from_state, tr.to_state, tr.at) == (State.DOWN, State.UP, at(6))
    assert tr.cause_kind == "recovered"


def test_configurable_thresholds() -> None:
    m = TargetMachine("a", OutageRules(down_after_failures=1, up_after_successes=3))
    run(m, [ok(0)])
    (tr,) = run(m, [fail(1)])
    assert tr.to_state is State.DOWN
    assert run(m, [ok(2), ok(3)]) == []
    (tr,) = run(m, [ok(4)])
    assert tr.to_state is State.UP and tr.at == at(2)


def test_rate_limited_is_degraded_with_its_own_cause_then_back_up() -> None:
    m = TargetMachine("a", OutageRules())
    run(m, [ok(0)])
    trs = run(m, [fail(i, kind="rate_limited") for i in range(1, 6)])
    assert [t.to_state for t in trs] == [State.DEGRADED], "429s never make a target down"
    assert trs[0].cause_kind == "rate_limited"
    assert run(m, [ok(6)]) == []  # one success: still degraded (hysteresis)
    (tr,) = run(m, [ok(7)])
    assert tr.to_state is State.UP


def test_rate_limited_can_count_as_down() -> None:
    m = TargetMachine("a", OutageRules(rate_limited_state="down"))
    run(m, [ok(0)])
    trs = run(m, [fail(i, kind="rate_limited") for i in range(1, 4)])
    assert [t.to_state for t in trs] == [State.DOWN]
    assert trs[0].cause_kind == "rate_limited"


def test_rate_limit_ends_a_failure_streak() -> None:
    m = TargetMachine("a", OutageRules())
    run(m, [ok(0), fail(1), fail(2)])
    run(m, [fail(3, kind="rate_limited")])
    assert m.s.state is State.DEGRADED and m.s.fail_streak == 0


def test_error_rate_over_a_full_window_degrades() -> None:
    rules = OutageRules(error_rate_window_probes=10, degraded_error_rate=0.3)
    m = TargetMachine("a", rules)
    obs = []
    for i in range(10):
        obs.append(fail(i) if i in (2, 5, 8) else ok(i))
    trs = run(m, obs)
    assert [t.to_state for t in trs] == [State.UP, State.DEGRADED]
    assert trs[-1].cause_kind == "error_rate" and "30%" in trs[-1].cause_message
    # Seven clean probes push the failures out of the window; two more successes needed.
    trs = run(m, [ok(i) for i in range(10, 20)])
    assert [t.to_state for t in trs] == [State.UP]


def test_error_rate_needs_a_full_window() -> None:
    m = TargetMachine("a", OutageRules(error_rate_window_probes=10))
    assert [t.to_state for t in run(m, [ok(0), fail(1), ok(2)])] == [State.UP]


def test_p95_ttft_above_objective_degrades_and_recovers() -> None:
    rules = OutageRules(ttft_slo_ms=500.0, slo_window_probes=10)
    m = TargetMachine("a", rules)
    trs = run(m, [ok(i, ttft=200.0) for i in range(10)])
    assert [t.to_state for t in trs] == [State.UP]
    trs = run(m, [ok(i, ttft=900.0) for i in range(10, 12)])
    assert [t.to_state for t in trs] == [State.DEGRADED]
    assert trs[0].cause_kind == "ttft_slo" and "objective 500 ms" in trs[0].cause_message
    trs = run(m, [ok(i, ttft=200.0) for i in range(12, 30)])
    assert [t.to_state for t in trs] == [State.UP]


def test_leaving_down_does_not_stay_degraded_from_the_outage_failures() -> None:
    m = TargetMachine("a", OutageRules(error_rate_window_probes=10))
    run(m, [ok(0)] + [fail(i) for i in range(1, 9)])
    assert m.s.state is State.DOWN
    trs = run(m, [ok(9), ok(10)])
    assert [t.to_state for t in trs] == [State.UP]


def test_probe_config_and_internal_are_ignored() -> None:
    m = TargetMachine("a", OutageRules())
    run(m, [ok(0)])
    assert run(m, [fail(i, kind="probe_config") for i in range(1, 6)]) == []
    assert m.s.state is State.UP and m.s.fail_streak == 0
    assert m.s.probes_in_state == 6 and m.s.failures_in_state == 5


def test_failures_from_no_data_show_degraded_then_down() -> None:
    m = TargetMachine("a", OutageRules())
    trs = run(m, [fail(0), fail(1), fail(2)])
    assert [t.to_state for t in trs] == [State.DEGRADED, State.DOWN]


def test_pause_resume_and_not_configured() -> None:
    m = TargetMachine("a", OutageRules())
    run(m, [ok(0)])
    tr = m.set_state(State.PAUSED, at(1), "paused", "probing paused")
    assert tr is not None and (tr.from_state, tr.to_state) == (State.UP, State.PAUSED)
    assert m.set_state(State.PAUSED, at(2), "paused", "again") is None
    assert run(m, [fail(3), fail(4), fail(5)]) == []  # a forced probe while paused
    tr = m.set_state(State.NO_DATA, at(6), "resumed", "waiting")
    assert tr is not None and tr.to_state is State.NO_DATA
    assert [t.to_state for t in run(m, [ok(7)])] == [State.UP]
    tr = m.set_state(State.NOT_CONFIGURED, at(8), "not_configured", "key unset")
    assert tr is not None and tr.to_state is State.NOT_CONFIGURED


def test_machine_state_round_trips_through_json() -> None:
    m = TargetMachine("a", OutageRules())
    run(m, [ok(0), fail(1), fail(2)])
    restored = TargetMachine("a", OutageRules(), MachineState.from_json(m.s.to_json()))
    (tr,) = run(restored, [fail(3)])
    assert tr.to_state is State.DOWN and tr.at == at(1)


# ---- monitor blindness ------------------------------------------------------------------------


def coordinator(*targets: str, hosts: dict[str, str] | None = None) -> Coordinator:
    machines = {t: TargetMachine(t, OutageRules()) for t in targets}
    return Coordinator(machines, hosts or {t: f"{t}.example" for t in targets}, targets)


def conn(i: int, target: str, kind: str = "connect_error") -> Observation:
    return Observation(target, at(i), "error", kind, "no response")


def states(c: Coordinator) -> dict[str, State]:
    return {n: m.s.state for n, m in c.machines.items()}


def test_every_host_failing_at_connect_level_is_monitor_blindness() -> None:
    c = coordinator("a", "b", "c")
    for i, t in enumerate("abc"):
        c.observe(ok(i, t))
    assert states(c) == dict.fromkeys("abc", State.UP)
    events = []
    for rnd in range(5):  # five rounds of no network at all
        for j, t in enumerate("abc"):
            kind = ("connect_timeout", "connect_error")[j % 2]
            events += c.observe(conn(10 + rnd * 3 + j, t, kind))
    blind = [e for e in events if isinstance(e, BlindStarted)]
    assert len(blind) == 1 and blind[0].since == at(10)
    assert not any(isinstance(e, Transition) for e in events), "never recorded as downtime"
    assert states(c) == dict.fromkeys("abc", State.UP)
    assert c.blind_since == at(10)
    # The network comes back: blindness ends, nothing was counted against the providers.
    events = c.observe(ok(40, "a"))
    assert isinstance(events[0], BlindEnded) and events[0].at == at(40)
    assert c.blind_since is None
    assert all(m.s.fail_streak == 0 for m in c.machines.values())


def test_one_host_failing_at_connect_level_is_the_provider() -> None:
    c = coordinator("a", "b")
    c.observe(ok(0, "a"))
    c.observe(ok(1, "b"))
    events = []
    for rnd in range(3):
        events += c.observe(conn(10 + 2 * rnd, "a", "connect_refused"))
        assert c.machines["a"].s.pending, "held until another host answers"
        events += c.observe(ok(11 + 2 * rnd, "b"))
    downs = [e for e in events if isinstance(e, Transition) and e.to_state is State.DOWN]
    assert len(downs) == 1 and downs[0].target == "a" and downs[0].at == at(10)
    assert downs[0].cause_kind == "connect_refused"
    assert c.blind_since is None


def test_targets_on_one_host_cannot_make_the_monitor_blind() -> None:
    c = coordinator("a", "b", hosts={"a": "h", "b": "h"})
    c.observe(ok(0, "a"))
    c.observe(ok(1, "b"))
    for i in range(2, 8):
        c.observe(conn(i, "ab"[i % 2]))
    assert states(c) == {"a": State.DOWN, "b": State.DOWN}
    assert c.blind_since is None


def test_pending_failures_are_confirmed_by_another_hosts_http_error() -> None:
    c = coordinator("a", "b")
    c.observe(ok(0, "a"))
    c.observe(ok(1, "b"))
    c.observe(conn(2, "a"))
    events = c.observe(fail(3, "b", "server_error"))  # b answered (HTTP 500): network works
    assert isinstance(events[0], Counted) and events[0].target == "a"
    assert c.machines["a"].s.fail_streak == 1 and not c.machines["a"].s.pending


def test_pausing_the_other_hosts_settles_pending_failures() -> None:
    c = coordinator("a", "b")
    c.observe(ok(0, "a"))
    c.observe(conn(1, "a"))
    c.set_active({"a"})
    assert c.machines["a"].s.fail_streak == 1


@pytest.mark.parametrize("kind", ["connect_refused", "connect_error", "connect_timeout"])
def test_all_connect_kinds_count_for_blindness(kind: str) -> None:
    c = coordinator("a", "b")
    c.observe(conn(0, "a", kind))
    events = c.observe(conn(1, "b", kind))
    assert any(isinstance(e, BlindStarted) for e in events)


@pytest.mark.parametrize(
    ("kind", "outcome"),
    [
        # Hand-written from issue 9 and docs/uptime.md, not read from the code's table.
        ("dns", Outcome.IGNORED),  # the name does not exist: our configuration
        ("dns_timeout", Outcome.IGNORED),  # our resolver did not answer: the monitor's side
        ("connect_refused", Outcome.CONNECT),  # resolved, then dropped: the provider's (unless
        ("connect_timeout", Outcome.CONNECT),  # every host fails at once)
        ("connect_error", Outcome.CONNECT),
        ("tls", Outcome.FAILURE),
        ("safety_block", Outcome.IGNORED),  # a policy outcome, not downtime
        ("content_filter", Outcome.IGNORED),
        ("model_loading", Outcome.IGNORED),
        ("probe_config", Outcome.IGNORED),
        ("not_configured", Outcome.IGNORED),
        ("internal", Outcome.IGNORED),
        ("rate_limited", Outcome.RATE_LIMITED),
        ("overloaded", Outcome.FAILURE),
        ("server_error", Outcome.FAILURE),
        ("stream_error", Outcome.FAILURE),
        ("truncated", Outcome.FAILURE),
        ("empty_response", Outcome.FAILURE),
        ("first_token_timeout", Outcome.FAILURE),
    ],
)
def test_classify_follows_each_kinds_side(kind: str, outcome: Outcome) -> None:
    assert classify("error", kind) is outcome


@pytest.mark.parametrize("kind", ["dns", "dns_timeout", "safety_block", "model_loading"])
def test_never_downtime(kind: str) -> None:
    m = TargetMachine("a", OutageRules())
    transitions = run(m, [ok(0)] + [fail(i, kind=kind) for i in range(1, 8)])
    assert m.s.state is State.UP and not [t for t in transitions if t.to_state is State.DOWN]


def test_neutral_outcome_is_an_answer_but_a_resolver_timeout_is_not() -> None:
    # A blocked prompt came from the provider: the network works, pending failures count.
    c = coordinator("a", "b")
    c.observe(ok(0, "a"))
    c.observe(ok(1, "b"))
    c.observe(conn(2, "a"))
    events = c.observe(fail(3, "b", "safety_block"))
    assert any(isinstance(e, Counted) and e.target == "a" for e in events)
    assert c.machines["a"].s.fail_streak == 1 and not c.machines["a"].s.pending
    # Our resolver timing out is no answer: with a's connect failure, every internet host
    # failed before answering, so the monitor is blind and a is not blamed.
    c.observe(conn(4, "a"))
    events = c.observe(fail(5, "b", "dns_timeout"))
    assert any(isinstance(e, BlindStarted) for e in events)
    assert c.machines["a"].s.fail_streak == 1 and not c.machines["a"].s.pending


def test_rules_come_from_the_config_field_by_field() -> None:
    # Every rule is a config setting of the same name; renaming one on either side fails here.
    assert {f.name for f in dataclasses.fields(OutageRules)} <= set(ProbeSettings.model_fields)
    config = parse_config(
        "[defaults]\ndown_after_failures = 7\nup_after_successes = 4\nttft_slo_ms = 850.0\n"
        "slo_window_probes = 30\ndegraded_error_rate = 0.35\nerror_rate_window_probes = 40\n"
        'rate_limited_state = "down"\n'
        '[[targets]]\nname = "a"\nprovider = "openai-compatible"\n'
        'base_url = "http://127.0.0.1:9/v1"\nmodel = "m"\nup_after_successes = 5\n'
    )
    (target,) = config.resolved()
    assert OutageRules.from_settings(target.settings) == OutageRules(
        down_after_failures=7,
        up_after_successes=5,
        ttft_slo_ms=850.0,
        slo_window_probes=30,
        degraded_error_rate=0.35,
        error_rate_window_probes=40,
        rate_limited_state="down",
    )
    # Unset in the config, the rules are the documented defaults (docs/uptime.md, "Rules").
    assert OutageRules() == OutageRules(
        down_after_failures=3,
        up_after_successes=2,
        ttft_slo_ms=None,
        slo_window_probes=20,
        degraded_error_rate=0.2,
        error_rate_window_probes=20,
        rate_limited_state="degraded",
    )


class CountingMachines(dict[str, TargetMachine]):
    """The coordinator's machines, counting every walk over all of them."""

    walks = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        CountingMachines.walks += 1
        return super().__iter__()

    def items(self):  # type: ignore[no-untyped-def]
        CountingMachines.walks += 1
        return super().items()

    def values(self):  # type: ignore[no-untyped-def]
        CountingMachines.walks += 1
        return super().values()


def test_an_answered_probe_never_walks_every_target() -> None:
    # Issue #15: flush_pending looped over all targets on every answered probe (O(targets)
    # per probe at 1,000 targets). Pending failures are now tracked as they come and go.
    names = [f"t{i}" for i in range(1000)]
    c = coordinator(*names, hosts={n: f"h{i % 50}" for i, n in enumerate(names)})
    c.machines = CountingMachines(c.machines)
    CountingMachines.walks = 0
    for i, n in enumerate(names):
        c.observe(ok(i, n))
    c.observe(conn(1001, "t1"))  # one pending connect failure...
    for i, n in enumerate(names[2:50]):
        c.observe(ok(1002 + i, n))  # ...settled by the next answer, then nothing pending
    assert CountingMachines.walks == 0
    assert c.machines["t1"].s.fail_streak == 1 and not c.machines["t1"].s.pending


# ---- which path an answer proves (issue 11) ---------------------------------------------------


@pytest.mark.parametrize(
    ("host", "path"),
    [
        ("localhost:11434", "loopback"),
        ("127.0.0.1:8080", "loopback"),
        ("[::1]:8080", "loopback"),
        ("ollama.localhost", "loopback"),
        ("192.168.1.20:8000", "private"),
        ("10.0.0.5", "private"),
        ("172.16.3.4:80", "private"),
        ("[fd00::1]:80", "private"),
        ("169.254.1.1", "private"),
        ("gpu-box.local:8000", "private"),
        ("api.openai.com", "internet"),
        ("api.groq.com:443", "internet"),
        ("8.8.8.8", "internet"),
    ],
)
def test_network_path_of_a_host(host: str, path: str) -> None:
    assert network_path(host) == path


def cloud_and_local() -> Coordinator:
    hosts = {"openai": "api.openai.com", "groq": "api.groq.com", "llama": "127.0.0.1:8080"}
    return coordinator("openai", "groq", "llama", hosts=hosts)


def nxdomain(i: int, target: str) -> Observation:
    return Observation(
        target, at(i), "error", "dns", "host name not found: Name or service not known"
    )


def test_no_internet_and_a_local_server_answering_blames_no_provider() -> None:
    # The exact case: no network, the names do not resolve, llama.cpp on loopback
    # answers every probe. Before, the local answer "proved" the network and every cloud
    # target's failure counted against it.
    c = cloud_and_local()
    events: list[object] = []
    for rnd in range(6):
        events += c.observe(ok(rnd * 3, "llama"))
        events += c.observe(nxdomain(rnd * 3 + 1, "openai"))
        events += c.observe(conn(rnd * 3 + 2, "groq", "connect_error"))
    blind = [e for e in events if isinstance(e, BlindStarted)]
    assert len(blind) == 1 and blind[0].since == at(1)
    assert "dns" in blind[0].message and "connect_error" in blind[0].message
    assert c.blind_since == at(1)
    assert not [e for e in events if isinstance(e, Transition) and e.to_state is State.DOWN]
    assert states(c) == {"openai": State.NO_DATA, "groq": State.NO_DATA, "llama": State.UP}
    # Only an internet answer ends it.
    assert not any(isinstance(e, BlindEnded) for e in c.observe(ok(40, "llama")))
    assert isinstance(c.observe(ok(41, "groq"))[0], BlindEnded)


def test_a_local_answer_does_not_confirm_a_cloud_hosts_connect_failure() -> None:
    c = cloud_and_local()
    c.observe(conn(0, "groq"))
    c.observe(ok(1, "llama"))
    assert c.machines["groq"].s.pending and c.machines["groq"].s.fail_streak == 0
    c.observe(fail(2, "openai", "server_error"))  # an internet answer: groq's failure counts
    assert not c.machines["groq"].s.pending and c.machines["groq"].s.fail_streak == 1


def test_a_local_server_refusing_is_down_at_once_even_while_blind() -> None:
    c = cloud_and_local()
    c.observe(nxdomain(0, "openai"))
    c.observe(nxdomain(1, "groq"))
    assert c.blind_since == at(0)
    for i in range(2, 5):
        c.observe(conn(i, "llama", "connect_refused"))
    assert c.machines["llama"].s.state is State.DOWN


def test_one_name_that_does_not_exist_is_a_config_error_not_blindness() -> None:
    c = cloud_and_local()
    for i in range(0, 12, 2):
        c.observe(nxdomain(i, "openai"))  # a typo in the base URL
        c.observe(ok(i + 1, "groq"))
    assert c.blind_since is None
    assert c.machines["openai"].s.state is State.NO_DATA  # never downtime
    assert c.machines["groq"].s.state is State.UP
