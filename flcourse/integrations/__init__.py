"""Bridges from flcourse to other frameworks; each imports its framework only when used."""
