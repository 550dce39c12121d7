"""Sync between spoke and hub: the wire protocol, the client engine and transports, and the reference hub."""
