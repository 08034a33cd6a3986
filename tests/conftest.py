from __future__ import annotations

import os

# Tests never sign with a production key, and never read one from the environment.
os.environ["TUTORPULSE_JWT_SECRET"] = "test-secret-for-tutorpulse-tests-only-0123456789"
os.environ.setdefault("TUTORPULSE_LOG_LEVEL", "WARNING")
