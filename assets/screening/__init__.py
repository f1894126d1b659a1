"""Screening: PII redaction and poisoning (indirect prompt injection) detection."""
