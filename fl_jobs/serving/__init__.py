"""The final global model as an MLflow model, and scoring new rows with it (``predict``)."""
