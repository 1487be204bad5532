"""The Results tab: evaluation, predictions, export and saving a trained model."""
