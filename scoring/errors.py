"""Domain errors: messages written for people, naming the file, row, column or criterion."""


class LeadScoreError(Exception):
    """Base of every error the app shows as a message and the command line exits 1 on."""


class ModelError(LeadScoreError):
    """A model file or model object breaks a rule of the contract."""


class DataError(LeadScoreError):
    """A data file or mapping cannot be used as it is."""
