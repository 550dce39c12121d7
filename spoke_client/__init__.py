"""Spoke: offline-first desktop client for a telemedicine spoke (health-and-wellness centre)."""

__version__ = "0.2.0"
