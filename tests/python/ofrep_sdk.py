"""Evaluates wavegate flags through the real OpenFeature Python SDK and its OFREP provider.

Usage: ofrep_sdk.py BASE_URL TOKEN EXPECTED_SPLIT_JSON
Prints one line per check and a closing 'N passed, N failed' line; exits 1 on any failure.
"""

import json
import sys

from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

base_url, token, expected_path = sys.argv[1], sys.argv[2], sys.argv[3]
api.set_provider(OFREPProvider(base_url, headers_factory=lambda: {"Authorization": f"Bearer {token}"}))
client = api.get_client()

passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}: {detail}")


# A boolean flag, matched by a segment rule.
d = client.get_boolean_details("new-checkout", False, EvaluationContext("u1", {"email": "ann@example.com"}))
check("boolean targeting match", (d.value, d.variant, d.reason) == (True, "on", Reason.TARGETING_MATCH), d)

# A boolean flag, no rule matches: the default variant.
d = client.get_boolean_details("new-checkout", True, EvaluationContext("u1", {"country": "DE"}))
check("boolean default", (d.value, d.variant, d.reason, d.error_code) == (False, "off", Reason.DEFAULT, None), d)

# A string flag.
d = client.get_string_details("banner-color", "none", EvaluationContext("u1", {"plan": "vip"}))
check("string targeting match", (d.value, d.variant, d.reason) == ("#f00", "red", Reason.TARGETING_MATCH), d)
d = client.get_string_details("banner-color", "none", EvaluationContext("u1", {}))
check("string default", (d.value, d.reason) == ("#00f", Reason.DEFAULT), d)

# A float flag keeps its type.
d = client.get_float_details("price-factor", 9.9, EvaluationContext("u1", {}))
check("float static", (d.value, d.reason) == (1.0, Reason.STATIC) and isinstance(d.value, float), d)

# An object flag.
d = client.get_object_details("limits", {}, EvaluationContext("u1", {}))
check("object static", d.value == {"max": 10, "tier": "free"}, d)

# A percentage split: every answer equals the bucket wavegate-core computed for that key.
expected = json.load(open(expected_path))
mismatches = []
on = 0
for key, want in expected.items():
    d = client.get_boolean_details("new-checkout", False, EvaluationContext(key, {"country": "NO"}))
    if d.reason != Reason.SPLIT or d.variant != want:
        mismatches.append((key, want, d.variant, d.reason))
    on += d.variant == "on"
check(f"percentage split ({on} of {len(expected)} on)", not mismatches, mismatches[:5])

# A missing flag: FLAG_NOT_FOUND and the caller's default.
d = client.get_boolean_details("no-such-flag", True, EvaluationContext("u1", {}))
check("missing flag", (d.value, d.error_code, d.reason) == (True, ErrorCode.FLAG_NOT_FOUND, Reason.ERROR), d)

# A type mismatch: the SDK reports TYPE_MISMATCH and returns the caller's default.
d = client.get_string_details("new-checkout", "fallback", EvaluationContext("u1", {"email": "ann@example.com"}))
check("type mismatch", (d.value, d.error_code) == ("fallback", ErrorCode.TYPE_MISMATCH), d)

# A split that needs targetingKey, with none: the SDK sees TARGETING_KEY_MISSING.
d = client.get_string_details("strict-split", "fallback", EvaluationContext(None, {"plan": "x"}))
check("targeting key missing", (d.value, d.error_code) == ("fallback", ErrorCode.TARGETING_KEY_MISSING), d)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
