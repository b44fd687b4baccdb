"""An example seq2seq_cli plugin package: a tokenizer, a model (with an arch preset) and a decoding strategy.

Installed (`pip install ./examples/plugin`), seq2seq_cli finds the components through the entry points declared in
setup.cfg and imports this package when one of their names is used. Not installed, `--user-dir
examples/plugin/seq2seq_plugin_example` imports it before the command runs. Either way, importing the package
imports its three modules, whose `@REGISTRY.register(...)` decorators add the names:

- `lowercase-word` (tokenizer.py): lowercased words and punctuation marks;
- `transformer_layerdrop` and its arch `transformer_layerdrop_small` (models.py): the Transformer with LayerDrop;
- `diverse-beam` (search.py): diverse beam search.
"""
from . import models, search, tokenizer  # noqa: F401  (each registers its components on import)
