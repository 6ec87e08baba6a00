"""Admission webhooks: the AdmissionReview shell around the engine, its server and its configurations."""
