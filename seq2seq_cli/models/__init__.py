"""Models: encoder-decoder networks registered in `seq2seq_cli.registry.MODELS`."""
