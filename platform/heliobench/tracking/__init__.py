"""MLflow runs, provenance, the leaderboard table, submissions and the HTML page."""
