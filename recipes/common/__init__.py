"""What every recipe shares: strategy and precision setup, errors, outputs."""
