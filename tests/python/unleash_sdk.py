"""The real Unleash Python SDK (UnleashClient, evaluating locally with the Yggdrasil engine)
against wavegate's Unleash client API, compared context by context with wavegate's own OFREP
answers.

usage: unleash_sdk.py URL SERVER_SDK_TOKEN CLIENT_SDK_TOKEN N_CONTEXTS

Prints one line per flag with the agreement count, then "N contexts, M mismatches"; exits 1 on
any mismatch or if the SDK never loads the flags.
"""

import http.client
import json
import random
import sys
import tempfile
import time
import urllib.parse

from UnleashClient import UnleashClient
from UnleashClient.cache import FileCache

url, sdk_token, client_token, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

cache_dir = tempfile.mkdtemp(prefix="unleash-sdk-")
client = UnleashClient(
    url=url + "/api",
    app_name="wavegate-it",
    instance_id="it-1",
    custom_headers={"Authorization": sdk_token},
    refresh_interval=1,
    metrics_interval=1,
    cache=FileCache("wavegate-it", directory=cache_dir),
)
client.initialize_client()

# The first fetch happens in the background: wait (with a deadline) until the SDK knows a flag
# that is on for everyone (`colour` is enabled with a catch-all).
deadline = time.monotonic() + 30
while not client.is_enabled("colour", {"userId": "probe"}):
    if time.monotonic() > deadline:
        print("the SDK never loaded the flags")
        sys.exit(1)
    time.sleep(0.05)

u = urllib.parse.urlparse(url)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)


def ofrep_bulk(context):
    body = json.dumps({"context": context})
    conn.request(
        "POST",
        "/ofrep/v1/evaluate/flags",
        body=body,
        headers={"Authorization": "Bearer " + client_token, "Content-Type": "application/json"},
    )
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise SystemExit(f"OFREP answered {resp.status}: {data[:200]!r}")
    return {f["key"]: f for f in json.loads(data)["flags"]}


rng = random.Random(20261123)
countries = ["NO", "SE", "DK", "DE", "KP", "US"]
plans = ["pro", "team", "free"]
checks = {"rollout": [0, 0], "colour": [0, 0], "nordic": [0, 0], "beta-banner": [0, 0]}
on_counts = {k: 0 for k in checks}
mismatches = []
for i in range(n):
    props = {"country": rng.choice(countries), "plan": rng.choice(plans)}
    if rng.random() < 0.8:
        props["age"] = str(rng.randint(12, 80))
    ctx_w = dict(props)
    ctx_u = {"properties": dict(props)}
    # Always a user or a session id: without either, `default` stickiness draws at random.
    if rng.random() < 0.9:
        uid = f"user-{rng.randint(0, 10**9)}" if rng.random() < 0.95 else rng.choice(["user-3", "user-7"])
        ctx_w["targetingKey"] = uid
        ctx_u["userId"] = uid
    else:
        sid = f"session-{rng.randint(0, 10**9)}"
        ctx_w["sessionId"] = sid
        ctx_u["sessionId"] = sid
    served = ofrep_bulk(ctx_w)
    for key in checks:
        if key == "colour":
            mine = client.get_variant(key, ctx_u)["name"]
            theirs = served[key]["variant"]
        else:
            mine = client.is_enabled(key, ctx_u)
            theirs = served[key]["value"] is True
            on_counts[key] += int(theirs)
        checks[key][0 if mine == theirs else 1] += 1
        if mine != theirs and len(mismatches) < 10:
            mismatches.append(f"{key} for {ctx_u}: SDK {mine}, OFREP {theirs}")

client.destroy()
total = 0
for key, (agree, disagree) in checks.items():
    print(f"{key}: {agree} agree, {disagree} disagree" + (f", on for {on_counts[key]}" if key != "colour" else ""))
    total += disagree
for m in mismatches:
    print("mismatch:", m)
print(f"{n} contexts, {total} mismatches")
# Each case must be exercised both ways, or the comparison proves nothing.
for key in ("rollout", "nordic", "beta-banner"):
    if not 0 < on_counts[key] < n:
        print(f"{key} was on for {on_counts[key]} of {n} contexts: not a real test")
        sys.exit(1)
sys.exit(1 if total else 0)
