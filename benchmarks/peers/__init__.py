"""The peers a user would pick instead: BentoML and LitServe serving the same .tflite files."""
