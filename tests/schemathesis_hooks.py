"""schemathesis hooks for tests/schemathesis.rs (loaded through SCHEMATHESIS_HOOKS).

OCSP requests are DER bytes: schemathesis sends generated bodies of application/ocsp-request as it
sends application/octet-stream ones, raw.
"""

import schemathesis

schemathesis.serializer.alias("application/ocsp-request", "application/octet-stream")
