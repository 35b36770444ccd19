"""labelqueue's Label Studio ML backend: the HTTP edge, the model and its retraining."""
