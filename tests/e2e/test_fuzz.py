"""Generated bad requests to the REST channel: never a 5xx, never a hang, and the assistant still
answers a normal question afterwards."""
import json

import requests
from hypothesis import HealthCheck, given, settings, strategies as st

REQUESTS = 500
TIMEOUT_S = 30

odd_text = st.one_of(
    st.just(""),
    st.text(alphabet=" \t\n\r", max_size=50),
    st.text(max_size=300),                                  # any unicode, control chars included
    st.text(alphabet=st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF), max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0x0590, max_codepoint=0x06FF), max_size=80),
    st.sampled_from(["<script>alert(1)</script>", "<img src=x onerror=alert(1)>",
                     "'; DROP TABLE events; --", "1 OR 1=1", "{{7*7}}", "${jndi:ldap://x}",
                     "/restart", "/ask_trial{\"x\": 1}", "%00%0d%0a", "\\x00\\uffff"]),
    st.builds(lambda c, n: c * n, st.characters(), st.integers(1000, 100_000)),
)
odd_value = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                      st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5),
                                                                          st.integers(), max_size=3))
sender = st.one_of(st.text(min_size=1, max_size=40), st.text(min_size=200, max_size=5000),
                   odd_value)

valid_shape = st.fixed_dictionaries({"sender": sender, "message": odd_text})
wrong_types = st.fixed_dictionaries({"sender": sender, "message": odd_value})
missing_fields = st.dictionaries(st.sampled_from(["sender", "message", "metadata", "x"]),
                                 st.one_of(odd_text, odd_value), max_size=3)
as_json = st.one_of(valid_shape, wrong_types, missing_fields).map(
    lambda body: json.dumps(body).encode("utf-8", "surrogatepass"))
raw_bytes = st.one_of(st.binary(max_size=500),                 # invalid UTF-8, broken JSON
                      st.just(b'{"sender": "x", "message": "\xff\xfe"}'),
                      st.just(b"[" * 10_000))
bodies = st.one_of(as_json, as_json, raw_bytes)

sent = []


def test_generated_bad_requests_never_get_a_5xx(stack, chat):
    url = f"{stack.rasa_url}/webhooks/rest/webhook"

    @settings(max_examples=REQUESTS, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(body=bodies)
    def check(body):
        response = requests.post(url, data=body, timeout=TIMEOUT_S,
                                 headers={"Content-Type": "application/json"})
        sent.append(response.status_code)
        assert response.status_code < 500, (response.status_code, body[:200])

    check()
    print(f"\nfuzz: {len(sent)} generated requests, "
          f"{sum(200 <= s < 300 for s in sent)} answered, {sum(400 <= s < 500 for s in sent)} 4xx")
    assert len(sent) >= REQUESTS
    assert "24-48 hours" in " ".join(m.get("text", "") for m in chat("how long is the trial"))
