# Hooks for the schemathesis run (.ci/schemathesis, loaded through SCHEMATHESIS_HOOKS).
#
# An Idempotency-Key names one request: the server answers a second, different request with
# the same key `422 IDEMPOTENCY_KEY_REUSED` (or `409` while the first runs), as documented.
# The generator draws keys from a small space and sends them with unrelated bodies, which
# would test the generator's reuse, not the API. So a key the spec accepts is made unique per
# request (its value still fits the spec: printable ASCII, at most 255 characters); a key the
# spec refuses is sent as generated, so the negative tests of the header still run.
import itertools
import re

import schemathesis

VALID_KEY = re.compile(r"^[!-~]{1,255}$")
_serial = itertools.count()


@schemathesis.hook
def before_call(context, case, **kwargs):
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() != "idempotency-key":
            continue
        value = headers[name]
        if isinstance(value, str) and VALID_KEY.match(value):
            suffix = f"-st{next(_serial)}"
            headers[name] = value[: 255 - len(suffix)] + suffix
