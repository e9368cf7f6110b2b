"""What a download writes besides the journal: frame files (and, in their own modules,
the other output kinds)."""
