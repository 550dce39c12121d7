"""Clinical and identity rules: dataclasses and pure functions, standard library only."""
