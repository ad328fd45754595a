"""Running Limitflow: the demo (``python -m ops.demo``) and deployment files."""
