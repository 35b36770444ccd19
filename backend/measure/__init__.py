"""Is the loop working: the cycles database, per-cycle measurement, and the HTML report."""
