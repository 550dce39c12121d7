"""Sync between spoke and hub: protocol, client engine, USB bundles, reference hub (issue 3; not built yet)."""
