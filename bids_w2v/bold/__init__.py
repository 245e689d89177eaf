"""bold."""
