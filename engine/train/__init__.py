"""Training: the stage runner behind `ftctl run` and every daemon job."""
