"""Shared code of the predict_mpg and classify_image Cloud Functions, one module per concern."""
