"""Domain services: the only code that writes rows. Each takes an AsyncSession and flushes; the caller commits."""
