"""A HubSpot-faithful fake beside the mock CRM (`python -m mock_crm --dialect hubspot`).

Built from HubSpot's published API documents (contacts v3, meetings v3, associations v4, OAuth refresh
tokens, v3-signed webhooks); nothing here was checked against HubSpot itself.
"""
