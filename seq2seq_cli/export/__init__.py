"""`seq2seq export`: turn a checkpoint into a model for another inference engine (CTranslate2), with a parity check."""
