"""Ingestion domain: load, clean, screen, chunk, embed and index documents."""
