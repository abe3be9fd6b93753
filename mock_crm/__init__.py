"""A self-contained mock CRM (OAuth tokens, users, meetings, faults, signed webhooks) for crmsync."""

from mock_crm.app import create_app
from mock_crm.config import ConfigError, MockConfig
from mock_crm.signing import sign

__all__ = ["ConfigError", "MockConfig", "create_app", "sign"]
