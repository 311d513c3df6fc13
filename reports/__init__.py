"""execrl reports: comparisons, leaderboards, regression checks, plots, HTML."""
