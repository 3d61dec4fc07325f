"""Lead Scoring Studio's domain: model files, data loading, the SQL compiler and its engine.

Nothing here imports Streamlit, so the command line, the tests and any script can use it.
"""
