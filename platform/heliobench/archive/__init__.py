"""Where observations come from and how they are read: sources, readers, the simulated archive."""
