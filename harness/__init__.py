"""execrl harness: running programs (extraction, sandbox, verdicts), generation, the evaluate stage, the CLI."""
