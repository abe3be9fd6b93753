"""Building blocks of the HubSpot adapter (CRM v3 contacts, v3-signed webhooks, HubSpot's rate limits)."""
