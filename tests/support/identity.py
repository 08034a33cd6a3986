"""A stand-in identity provider: its own RSA and EC keys, a JWKS document served on
127.0.0.1, and tokens signed with those keys."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://idp.example.org/realms/centres"


class IdentityProvider:
    """Keys of its own, a JWKS document on 127.0.0.1, and tokens shaped the way it likes."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.rsa_kid = "rsa-1"
        self.requests = 0
        self.answering = threading.Event()
        """Cleared by :meth:`stall`: requests for the key set hang until :meth:`resume`."""
        self.answering.set()
        self.keys = [
            self._jwk(RSAAlgorithm.to_jwk(self.rsa.public_key()), "rsa-1", "RS256"),
            self._jwk(ECAlgorithm.to_jwk(self.ec.public_key()), "ec-1", "ES256"),
        ]
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the standard library's name
                provider.requests += 1
                provider.answering.wait()
                body = json.dumps({"keys": provider.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/certs"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def stall(self) -> None:
        """From now on the JWKS endpoint accepts connections and answers nothing."""
        self.answering.clear()

    def resume(self) -> None:
        self.answering.set()

    def rotate(self) -> str:
        """Sign with a new RSA key from now on and list only it (the old one is withdrawn);
        returns the new key's id."""
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rsa_kid = f"rsa-{int(self.rsa_kid.rsplit('-', 1)[1]) + 1}"
        self.keys = [
            self._jwk(RSAAlgorithm.to_jwk(self.rsa.public_key()), self.rsa_kid, "RS256"),
            *(key for key in self.keys if not key["kid"].startswith("rsa-")),
        ]
        return self.rsa_kid

    @staticmethod
    def _jwk(text: str, kid: str, alg: str) -> dict[str, Any]:
        return {**json.loads(text), "kid": kid, "alg": alg, "use": "sig"}

    def token(self, claims: dict[str, Any], *, alg: str = "RS256", kid: str | None = None) -> str:
        now = datetime.now(UTC)
        body = {
            "iss": ISSUER,
            "aud": "tutorpulse",
            "iat": now,
            "exp": now + timedelta(hours=1),
            **claims,
        }
        key = self.rsa if alg == "RS256" else self.ec
        return jwt.encode(
            body,
            key,
            algorithm=alg,
            headers={"kid": kid or (self.rsa_kid if alg == "RS256" else "ec-1")},
        )

    def settings(self, **extra: str) -> dict[str, str]:
        return {"TUTORPULSE_JWT_JWKS_URL": self.url, "TUTORPULSE_JWT_ISSUER": ISSUER, **extra}


@contextmanager
def running_identity_provider() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    provider.thread.start()
    try:
        yield provider
    finally:
        provider.resume()  # let stalled requests end, or shutdown() would wait for them
        provider.server.shutdown()
        provider.server.server_close()
