"""Test support shared by every test layer (unit, integration, e2e, reliability)."""
