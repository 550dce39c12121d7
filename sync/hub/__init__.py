"""The reference hub server (FastAPI), its service layer and tables."""
