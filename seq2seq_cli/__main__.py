"""`python -m seq2seq_cli` runs the `seq2seq` command."""
from seq2seq_cli.cli import main

if __name__ == "__main__":
    main()
