"""The human labelling app (`execrl label`)."""
