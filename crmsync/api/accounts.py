"""Sign-up and sign-in: POST /accounts and POST /authenticate."""

from __future__ import annotations

import attrs
from aiohttp import web

from ..auth import public
from ..errors import InvalidCredentials, ValidationFailed
from ..keys import config_key, db_key, signin_limiter_key
from ..passwords import hash_password, verify_password
from ..render import json_response
from ..store import accounts
from ..store.accounts import Account
from ..timeutil import isoformat
from ..tokens import issue_token
from ..validation import normalise_email, read_json_object, structure

MIN_PASSWORD, MAX_PASSWORD = 8, 1024


@attrs.frozen
class SignUp:
    """The body of POST /accounts."""

    email: str
    password: str = attrs.field(repr=False)
    password_confirmation: str = attrs.field(repr=False)


@attrs.frozen
class SignIn:
    """The body of POST /authenticate."""

    email: str
    password: str = attrs.field(repr=False)


def _token_body(request: web.Request, account_id: str) -> dict[str, str]:
    config = request.app[config_key]
    token, expires_at = issue_token(config.jwt_secret, account_id, config.token_ttl)
    return {"auth_token": token, "expires_at": isoformat(expires_at)}


@public
async def sign_up(request: web.Request) -> web.Response:
    """Create an account and return its first token."""
    form = structure(await read_json_object(request), SignUp)
    email, reason = normalise_email(form.email)
    errors = {"email": reason} if reason else {}
    if not MIN_PASSWORD <= len(form.password) <= MAX_PASSWORD:
        errors["password"] = f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"
    if form.password_confirmation != form.password:
        errors["password_confirmation"] = "does not match password"  # noqa: S105 (a message, not a secret)
    if errors or email is None:
        raise ValidationFailed(errors)
    account = await accounts.create(request.app[db_key], email, await hash_password(form.password))
    body = {"id": account.id, "email": account.email, **_token_body(request, account.id)}
    return json_response(body, status=201)


@public
async def authenticate(request: web.Request) -> web.Response:
    """Exchange email and password for a token; never says which of the two was wrong."""
    form = structure(await read_json_object(request), SignIn)
    email, _ = normalise_email(form.email)
    db = request.app[db_key]

    async def attempt() -> Account | None:
        account = await accounts.by_email(db, email) if email else None
        ok = await verify_password(form.password[:MAX_PASSWORD], account.password_hash if account else None)
        return account if ok else None

    # An email that cannot be valid is counted too, so the limit says nothing about which emails exist.
    limit_key = email or form.email.strip().lower()
    account = await request.app[signin_limiter_key].guard(db, limit_key, request.remote or "unknown", attempt)
    if account is None:
        raise InvalidCredentials("The email or password is not right.")
    return json_response(_token_body(request, account.id))
