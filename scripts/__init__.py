"""Scripts beside the project; a package so that tests can import them (import scripts.pgcluster)."""
