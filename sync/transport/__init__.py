"""How sync messages travel: HTTP to a hub; later USB bundles."""
