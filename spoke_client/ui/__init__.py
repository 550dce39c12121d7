"""The Qt front end: windows, pages, widgets and item models. Talks to services only, never to SQL."""
