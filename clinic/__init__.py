"""Clinic-specific server parts: its contact details and the REST channel visitors talk through."""
