"""Versioned schemas, one list per engine; a change to the schema adds a version to both."""
