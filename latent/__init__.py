"""The ``latent`` command line: composes each role's commands into one tool."""
