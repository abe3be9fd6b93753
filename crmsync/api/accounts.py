"""Sign-up and sign-in: POST /accounts and POST /authenticate."""

from __future__ import annotations

import logging

import attrs
from aiohttp import web

from ..auth import public
from ..errors import InvalidCredentials, TooManyAttempts, ValidationFailed
from ..keys import config_key, db_key, signin_limiter_key
from ..passwords import hash_password, verify_password
from ..render import json_response
from ..store import accounts
from ..store.accounts import Account
from ..timeutil import isoformat
from ..tokens import issue_token
from ..validation import normalise_email, read_json_object, structure

logger = logging.getLogger(__name__)

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
    logger.info("account_created", extra={"account_id": account.id})
    body = {"id": account.id, "email": account.email, **_token_body(request, account.id)}
    return json_response(body, status=201)


@public
async def authenticate(request: web.Request) -> web.Response:
    """Exchange email and password for a token; never says which of the two was wrong."""
    form = structure(await read_json_object(request), SignIn)
    email, _ = normalise_email(form.email)
    db = request.app[db_key]

    known: Account | None = None  # the account the email names, if any: for the log line, never the answer

    async def attempt() -> Account | None:
        nonlocal known
        known = await accounts.by_email(db, email) if email else None
        ok = await verify_password(form.password[:MAX_PASSWORD], known.password_hash if known else None)
        return known if ok else None

    # An email that cannot be valid is counted too, so the limit says nothing about which emails exist.
    limit_key = email or form.email.strip().lower()
    address = request.remote or "unknown"
    try:
        account = await request.app[signin_limiter_key].guard(db, limit_key, address, attempt)
    except TooManyAttempts:
        logger.info("sign_in_refused", extra={"reason": "too many failures", "address": address})
        raise
    if account is None:
        reason = "wrong password" if known else "no account with this email"
        logger.info("sign_in_failed", extra={"account_id": known.id if known else None, "reason": reason,
                                             "address": address})  # fmt: skip
        raise InvalidCredentials("The email or password is not right.")
    logger.info("signed_in", extra={"account_id": account.id})
    return json_response(_token_body(request, account.id))
