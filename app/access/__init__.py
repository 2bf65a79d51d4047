"""The access model: what a reader may read (levels, the decision, the caller's level)."""
