"""Tokens and prefix policies: who may read, write or reveal what."""
