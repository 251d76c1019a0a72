"""The ``adaspring`` command line (absl). Each sub-command lives in its own module with its own flags."""
