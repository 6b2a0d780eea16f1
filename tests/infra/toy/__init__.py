"""Toy extensions the tests register to show a seam takes one file plus one line."""
