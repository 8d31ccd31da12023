"""Tests and helpers that run real inference servers (llama.cpp llama-server) on 127.0.0.1."""
