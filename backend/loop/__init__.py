"""The active-learning loop of one project: retrain, pool cache, one selection cycle, its inputs."""
