"""An example seq2seq_cli plugin package; its components are found through entry points (see setup.cfg)."""
