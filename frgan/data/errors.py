"""Errors of the dataset layer."""


class DatasetError(ValueError):
    """A dataset file or folder is missing or not in the expected form; the message names it."""
