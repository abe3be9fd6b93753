"""crmsync: keeps local contacts and a CRM in agreement, in both directions."""
