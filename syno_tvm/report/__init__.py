"""Pictures and summaries of operators and results, written as plain text (DOT today)."""
