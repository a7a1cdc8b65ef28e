"""Importers of external weights (TFLite, TF1 checkpoints, keras.applications .h5) onto our layers by name."""
