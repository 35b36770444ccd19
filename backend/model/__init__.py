"""What is learned: the labelling config's task, the classifier, its features and predictions.

The default model is part of labelqueue's public Python API::

    from backend.model import fit_model, default_estimator, TrainedModel
"""
from backend.model.classifier import (
    PriorBalancedLogisticRegression,
    TrainedModel,
    default_estimator,
    fit_model,
    prior_balanced_weights,
)

__all__ = ["PriorBalancedLogisticRegression", "TrainedModel", "default_estimator", "fit_model",
           "prior_balanced_weights"]
