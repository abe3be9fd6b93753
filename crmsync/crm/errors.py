"""What can go wrong when talking to the CRM, phrased for the person reading last_error."""

from __future__ import annotations

from typing import Any


class CrmError(Exception):
    """A CRM call failed; transient errors are worth retrying later, the others are not."""

    transient = False

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class CrmUnavailable(CrmError):
    """The CRM could not be reached, timed out, failed or throttled us on every try."""

    transient = True


class CrmRejected(CrmError):
    """The CRM refused the request for a reason that retrying will not fix."""

    def __init__(self, message: str, status: int, body: dict[str, Any] | None = None) -> None:
        super().__init__(message, status)
        self.body = body or {}


class CrmDuplicate(CrmError):
    """The CRM already holds a record with this email."""

    def __init__(self, crm_id: str) -> None:
        super().__init__(f"The CRM already has this email as {crm_id}.", 409)
        self.crm_id = crm_id


class CrmNotFound(CrmError):
    """The CRM has no record with this id."""

    def __init__(self, crm_id: str) -> None:
        super().__init__(f"The CRM has no record {crm_id}.", 404)
        self.crm_id = crm_id


class CrmStale(CrmError):
    """A conditional write found the record changed since the version we based it on."""

    def __init__(self, crm_id: str) -> None:
        super().__init__(f"The CRM record {crm_id} changed since our last sync.", 412)
        self.crm_id = crm_id


class CrmEmailTaken(CrmError):
    """An update was refused: the CRM has the email on another contact."""

    def __init__(self, crm_id: str) -> None:
        super().__init__(f"The CRM already has this email on another contact ({crm_id}).", 409)
        self.crm_id = crm_id
