"""The original lesson's two servers (Flask development server + Keras), rebuilt for timing."""
