"""Training and export commands: they write model versions into a bucket folder."""
