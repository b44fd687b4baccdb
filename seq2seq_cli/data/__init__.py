"""Data on disk: reading parallel text (text.py), binarized datasets (indexed.py), the DATA_DIR contract
(datadir.py) and the preprocess step that writes it (preprocess.py). Nothing here imports torch."""
