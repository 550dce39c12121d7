"""The reference hub server (issue 3; not built yet)."""
