"""Tokenizers: Hugging Face `tokenizers` pipelines, stored as one JSON document (the vocabulary lives there only)."""
