"""The Sweep tab: a hyperparameter sweep of the project and what its study holds."""
