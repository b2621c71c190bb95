"""The http adapter against a real server on loopback: outcomes, deadlines, retries,
the circuit breaker, and read_all of eight sources that answer, fail, crawl and hang."""

from __future__ import annotations

import json
import threading
import time
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandu.intake import CircuitBreaker, HttpAdapter, read_all
from sandu.intake.http import parse_body
from sandu.sources.catalog import ALL_SOURCES
from sandu.sources.profile import canonical_sha256

AS_OF = date(2026, 10, 31)
PAYLOAD = {"headcount": 12, "tech_staff": 5}


def _valid_uscc() -> str:
    from sandu.simulate.universe import generate

    return str(generate(1, 1, AS_OF)["uscc"][0])


USCC = _valid_uscc()


class StubSource:
    """A loopback HTTP server. `behaviour[source]` is what `/{source}/{uscc}` does:
    ok, 404, 403, 500, garbage, array, slow:<s>, hang, flaky:<k> (500 k times, then ok),
    trickle (sends the body a byte every 0.2 s)."""

    def __init__(self):
        self.behaviour: dict[str, str] = {}
        self.requests: dict[str, int] = {}
        self.queries: list[dict[str, list[str]]] = []
        self.headers: list[tuple[str, dict[str, str]]] = []  # (source, the request's headers, names lower-case)
        self.release = threading.Event()
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802 (the stdlib's name)
                parts = urlsplit(self.path)
                source = parts.path.strip("/").split("/")[0]
                with stub._lock:
                    n = stub.requests[source] = stub.requests.get(source, 0) + 1
                    stub.queries.append(parse_qs(parts.query))
                    stub.headers.append((source, {k.lower(): v for k, v in self.headers.items()}))
                what = stub.behaviour.get(source, "ok")
                try:
                    if what == "ok":
                        self._send(200, json.dumps({**PAYLOAD, "source": source}).encode())
                    elif what in ("404", "403", "500", "503"):
                        self._send(int(what), b'{"detail": "x"}')
                    elif what == "garbage":
                        self._send(200, b"<html>\xff not json")
                    elif what == "array":
                        self._send(200, b"[1, 2, 3]")
                    elif what.startswith("body:"):
                        self._send(200, stub.bodies[source])
                    elif what.startswith("slow:"):
                        stub.release.wait(float(what.split(":")[1]))
                        self._send(200, json.dumps(PAYLOAD).encode())
                    elif what == "hang":
                        stub.release.wait(30)
                    elif what.startswith("flaky:"):
                        if n <= int(what.split(":")[1]):
                            self._send(500, b"{}")
                        else:
                            self._send(200, json.dumps(PAYLOAD).encode())
                    elif what == "trickle":
                        body = json.dumps(PAYLOAD).encode()
                        self.send_response(200)
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        for b in body:
                            if stub.release.wait(0.2):
                                return
                            self.wfile.write(bytes([b]))
                            self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):  # the client gave up: expected for hang and slow
                    pass

        self.bodies: dict[str, bytes] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def count(self, source: str) -> int:
        with self._lock:
            return self.requests.get(source, 0)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    s = StubSource()
    yield s
    s.close()


def adapter(stub: StubSource, **kw) -> HttpAdapter:
    args = {"connect_timeout_s": 0.5, "read_timeout_s": 2.0, "retries": 2, "backoff_s": 0.01, "breaker_failures": 100}
    return HttpAdapter(stub.url, **(args | kw))


@pytest.mark.parametrize(
    "behaviour, outcome, requests, words",
    [
        ("ok", "found", 1, ""),
        ("404", "no_record", 1, ""),
        ("403", "refused", 1, "HTTP 403"),
        ("500", "error", 3, "HTTP 500 (after 3 attempts)"),
        ("503", "error", 3, "HTTP 503"),
        ("garbage", "invalid", 1, "not UTF-8"),
        ("array", "invalid", 1, "not an object"),
    ],
)
def test_each_answer_has_its_outcome(stub, behaviour, outcome, requests, words):
    stub.behaviour["tax"] = behaviour
    a = adapter(stub)
    o = a.read("tax", USCC, AS_OF, 2.0)
    assert (o.outcome, o.source, o.adapter) == (outcome, "tax", "http")
    assert words in o.reason
    assert stub.count("tax") == requests == o.attempts
    assert stub.queries[-1] == {"as_of": ["2026-10-31"]}
    if outcome == "found":
        assert o.payload == {**PAYLOAD, "source": "tax"} and o.payload_sha256 == canonical_sha256(o.payload) and o.reason == ""
    else:
        assert o.payload is None and o.payload_sha256 is None


def test_a_slow_source_times_out_at_its_deadline_and_is_not_retried_past_it(stub):
    stub.behaviour["ip"] = "slow:5"
    t0 = time.monotonic()
    o = adapter(stub).read("ip", USCC, AS_OF, 0.3)
    elapsed = time.monotonic() - t0
    assert o.outcome == "timeout" and "no answer in time" in o.reason
    assert elapsed < 0.3 + 1.0  # the slack is a loaded machine's scheduling; waiting for the source: 5 s
    assert stub.count("ip") == 1  # no time left for a retry


def test_a_body_trickling_in_is_cut_at_the_deadline(stub):
    stub.behaviour["ip"] = "trickle"  # every byte comes well within the read timeout, the whole body does not
    t0 = time.monotonic()
    o = adapter(stub).read("ip", USCC, AS_OF, 0.5)
    assert o.outcome == "timeout" and time.monotonic() - t0 < 0.5 + 1.0  # the whole body: 0.2 s a byte


def test_retries_recover_a_flaky_source(stub):
    stub.behaviour["bank_flows"] = "flaky:2"
    o = adapter(stub).read("bank_flows", USCC, AS_OF, 2.0)
    assert (o.outcome, o.attempts, stub.count("bank_flows")) == ("found", 3, 3)


def test_retries_stop_at_the_bound(stub):
    stub.behaviour["bank_flows"] = "500"
    o = adapter(stub, retries=1).read("bank_flows", USCC, AS_OF, 2.0)
    assert (o.outcome, o.attempts, stub.count("bank_flows")) == ("error", 2, 2)
    stub.behaviour["tax"] = "500"
    o = adapter(stub, retries=0).read("tax", USCC, AS_OF, 2.0)
    assert (o.outcome, o.attempts, stub.count("tax")) == ("error", 1, 1)


def test_retries_stop_at_the_deadline(stub):
    stub.behaviour["tax"] = "500"
    pauses: list[float] = []

    def sleep(seconds: float) -> None:  # the real pause, recorded
        pauses.append(seconds)
        time.sleep(seconds)

    t0 = time.monotonic()
    o = adapter(stub, retries=5, backoff_s=0.2, sleep=sleep).read("tax", USCC, AS_OF, 0.35)  # back-offs 0.1–0.2, 0.2–0.4 …
    assert o.outcome == "error" and "no time left for retry" in o.reason
    # attempts at 0, after ≥ 0.1 s and after ≥ 0.1 + 0.2 s: a third fits in 0.35 s when the jitter draws low, a fourth never
    assert 1 <= stub.count("tax") == o.attempts <= 3 and len(pauses) == o.attempts - 1
    assert sum(pauses) < 0.35, "no pause reaches past the deadline"  # what the adapter decides, whatever the machine's load
    assert time.monotonic() - t0 < 0.35 + 1.0  # and it returns then (the slack is a loaded machine's scheduling)


def test_a_closed_port_is_an_error_retried(stub):
    url = stub.url
    stub.close()
    a = HttpAdapter(url, retries=2, backoff_s=0.01, breaker_failures=100)
    o = a.read("tax", USCC, AS_OF, 1.0)
    assert o.outcome == "error" and o.attempts == 3 and "ConnectError" in o.reason


def test_bad_requests_are_refused_before_any_request(stub):
    a = adapter(stub)
    assert a.read("tax", "not-a-uscc/../x", AS_OF, 1.0).outcome == "refused"
    assert a.read("weather", USCC, AS_OF, 1.0).outcome == "refused"
    assert stub.requests == {}
    with pytest.raises(ValueError, match="base_url"):
        HttpAdapter("ftp://example.org")


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_after_failures_in_a_row_and_closes_after_its_cool_down(stub):
    clock = FakeClock()
    a = adapter(stub, retries=0, breaker_failures=3, breaker_cooldown_s=30, breaker_clock=clock)
    stub.behaviour["credit_bureau"] = "500"
    for _ in range(3):
        assert a.read("credit_bureau", USCC, AS_OF, 1.0).outcome == "error"
    assert a.breaker("credit_bureau").state == "open" and stub.count("credit_bureau") == 3
    for _ in range(5):  # while open: at once, and nothing reaches the server
        o = a.read("credit_bureau", USCC, AS_OF, 1.0)
        assert o.outcome == "circuit_open" and o.attempts == 0 and "3 times in a row" in o.reason
    assert stub.count("credit_bureau") == 3
    assert a.read("tax", USCC, AS_OF, 1.0).outcome == "found"  # one breaker per source

    clock.now += 29.9
    assert a.read("credit_bureau", USCC, AS_OF, 1.0).outcome == "circuit_open"
    clock.now += 0.1
    assert a.breaker("credit_bureau").state == "half_open"
    assert a.read("credit_bureau", USCC, AS_OF, 1.0).outcome == "error"  # the trial fails: open again for a full cool-down
    assert stub.count("credit_bureau") == 4 and a.breaker("credit_bureau").state == "open"
    clock.now += 29.9
    assert a.read("credit_bureau", USCC, AS_OF, 1.0).outcome == "circuit_open"
    clock.now += 0.1
    stub.behaviour["credit_bureau"] = "ok"
    assert a.read("credit_bureau", USCC, AS_OF, 1.0).outcome == "found"
    assert a.breaker("credit_bureau").state == "closed" and stub.count("credit_bureau") == 5
    stub.behaviour["credit_bureau"] = "500"
    assert [a.read("credit_bureau", USCC, AS_OF, 1.0).outcome for _ in range(4)] == ["error", "error", "error", "circuit_open"]


def test_a_success_resets_the_count_of_failures():
    clock = FakeClock()
    b = CircuitBreaker(3, 10, clock)
    for success in (False, False, True, False, False):
        assert b.allow()
        b.record(success)
    assert b.state == "closed"
    b.allow()
    b.record(False)
    assert b.state == "open" and not b.allow()


def test_half_open_lets_one_trial_through_at_a_time():
    clock = FakeClock()
    b = CircuitBreaker(1, 5, clock)
    b.allow()
    b.record(False)
    clock.now += 5
    assert b.allow() and not b.allow()  # the second waits for the trial's result
    b.record(True)
    assert b.state == "closed" and b.allow() and b.allow()
    with pytest.raises(ValueError):
        CircuitBreaker(0, 5)


def test_read_all_of_eight_sources_ends_within_the_overall_deadline_with_the_gaps_flagged(stub):
    stub.behaviour.update({"tax": "ok", "invoices": "404", "social_insurance": "hang", "utilities": "slow:3", "ip": "garbage",
                           "credit_bureau": "500", "bank_flows": "flaky:1", "collateral": "trickle"})
    a = adapter(stub)
    overall, per = 1.0, 0.6
    t0 = time.monotonic()
    out = read_all({s: a for s in ALL_SOURCES}, ALL_SOURCES, USCC, AS_OF, per_source_deadline_s=per, overall_deadline_s=overall)
    elapsed = time.monotonic() - t0
    assert elapsed < overall + 1.0  # a correctness bound (the slow source takes 3 s, the hung one forever): the hung and slow sources did not hold the call
    assert list(out) == list(ALL_SOURCES)
    assert {s: o.outcome for s, o in out.items()} == {
        "tax": "found", "invoices": "no_record", "social_insurance": "timeout", "utilities": "timeout", "ip": "invalid",
        "credit_bureau": "error", "bank_flows": "found", "collateral": "timeout",
    }
    # the first attempt fails (500); a retry recovers it — on a busy machine the second may time out and the third (the bound) succeed
    assert 2 <= out["bank_flows"].attempts <= 3
    assert stub.count("credit_bureau") == 3


def test_read_all_names_the_overall_deadline_when_it_comes_first(stub):
    stub.behaviour.update({s: "hang" for s in ("tax", "ip")})
    a = adapter(stub)
    t0 = time.monotonic()
    # 1.5 s: room for the sources that answer even on a busy machine (at 0.4 s they could miss it too)
    out = read_all({s: a for s in ALL_SOURCES}, ALL_SOURCES, USCC, AS_OF, per_source_deadline_s=5.0, overall_deadline_s=1.5)
    assert time.monotonic() - t0 < 1.5 + 0.5
    for s in ("tax", "ip"):
        assert out[s].outcome == "timeout" and "overall deadline of 1500 ms" in out[s].reason
    assert {o.outcome for s, o in out.items() if s not in ("tax", "ip")} == {"found"}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=100).map(str.encode) | st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=20,
).map(lambda v: json.dumps(v).encode()))
def test_parsing_any_body_never_raises(body):
    payload, why = parse_body(body)
    assert (payload is None) != (why == "")
    if payload is not None:
        assert isinstance(payload, dict) and canonical_sha256(payload)  # hashable: no NaN, no infinity


def test_parse_body_refuses_nan_duplicates_and_deep_nesting():
    assert "not JSON" in parse_body(b'{"a": NaN}')[1]
    assert "duplicate key" in parse_body(b'{"a": 1, "a": 2}')[1]
    assert "out of the range" in parse_body(b'{"a": 1e999}')[1] and "not JSON" in parse_body(b'{"a": -Infinity}')[1]
    assert parse_body(b'{"a": 1.5e300, "b": [1, {"c": null}]}')[0] == {"a": 1.5e300, "b": [1, {"c": None}]}
    assert parse_body(b"[" * 100_000 + b"]" * 100_000)[0] is None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200) | st.sampled_from([b"null", b"1e999", b'"x"', b'{"a": NaN}', b"{}", b'{"a": {"b": []}}']))
def test_any_body_from_the_server_is_an_outcome_never_an_exception(stub, body):
    stub.behaviour["utilities"] = "body:"
    stub.bodies["utilities"] = body
    o = adapter(stub).read("utilities", USCC, AS_OF, 2.0)
    assert o.outcome in ("found", "invalid")
    assert (o.outcome == "found") == (parse_body(body)[0] is not None)


def test_the_headers_the_settings_name_go_with_each_read_and_stay_secret(stub, monkeypatch):
    from sandu.intake.config import IntakeConfigError, adapters_from_settings
    from sandu.settings import Settings

    monkeypatch.setenv("SANDU_SOURCES_ADAPTER", "http")
    monkeypatch.setenv("SANDU_SOURCES_HTTP_URL", stub.url)
    monkeypatch.setenv("SANDU_SOURCES_HTTP_HEADERS", '{"Authorization": "Bearer gateway-token-1", "X-Channel": "sandu"}')
    monkeypatch.setenv("SANDU_SOURCE_HTTP_HEADERS", '{"credit_bureau": {"Authorization": "Bearer bureau-token-2", "X-Org": "ZJ001"}}')
    settings = Settings()
    assert "gateway-token-1" not in repr(settings) and "bureau-token-2" not in repr(settings)
    adapters = adapters_from_settings(settings, lambda uscc, source: None)
    for source in ("tax", "credit_bureau"):
        assert adapters[source].read(source, USCC, AS_OF, 2.0).outcome == "found"
    seen = dict(stub.headers)
    assert seen["tax"]["authorization"] == "Bearer gateway-token-1" and seen["tax"]["x-channel"] == "sandu" and "x-org" not in seen["tax"]
    assert seen["credit_bureau"]["authorization"] == "Bearer bureau-token-2"  # the source's own credential over the common one
    assert seen["credit_bureau"]["x-channel"] == "sandu" and seen["credit_bureau"]["x-org"] == "ZJ001"
    adapters["tax"].close()
    for common, per_source, words in [
        ({"Bad Name": "v"}, {}, "SANDU_SOURCES_HTTP_HEADERS: 'Bad Name' is not a header"),
        ({"Host": "evil.example"}, {}, "'Host' is not a header sandu may send"),
        ({"Authorization": "Bearer secret-x\r\nX-Injected: 1"}, {}, "the value of Authorization must be"),
        ({"X-Empty": ""}, {}, "the value of X-Empty must be"),
        ({}, {"weather": {"A": "b"}}, "SANDU_SOURCE_HTTP_HEADERS names weather"),
        ({}, {"tax": {"X-Key": "secret-y\n"}}, "SANDU_SOURCE_HTTP_HEADERS[tax]: the value of X-Key"),
    ]:
        bad = Settings(sources_adapter="http", sources_http_url=stub.url, sources_http_headers=common, source_http_headers=per_source)
        with pytest.raises(IntakeConfigError) as e:
            adapters_from_settings(bad, lambda uscc, source: None)
        assert words in str(e.value) and "secret-" not in str(e.value), str(e.value)
    assert stub.count("weather") == 0
