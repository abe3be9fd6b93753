"""The mock CRM adapter (mock_crm/): its paths, bodies, headers and webhooks."""
