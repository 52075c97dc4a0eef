"""Model code: encoders (one file per family), attention backends, heads and checkpoint loading."""
