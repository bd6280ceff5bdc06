"""Sign-in with OpenID Connect (authorization code + PKCE) through Authlib."""

from __future__ import annotations

from warroom.settings import Settings


def configured(settings: Settings) -> bool:
    return bool(getattr(settings, "oidc_issuer", ""))


from fastapi import APIRouter  # noqa: E402

router = APIRouter(include_in_schema=False)
