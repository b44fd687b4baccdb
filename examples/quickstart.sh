#!/usr/bin/env bash
# The main job on the bundled sample: preprocess -> train -> generate -> score, Spanish -> English.
# Runs in a few minutes on a laptop CPU. Everything it writes goes under $OUT (default: runs/quickstart).
# The model is tiny and trains briefly, so the BLEU it prints is low: this shows the pipeline, not the quality
# (examples/translation/ trains the reference model on the full corpus).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
DATA="$HERE/data/bible-sample"
OUT="${OUT:-runs/quickstart}"
MAX_UPDATE="${MAX_UPDATE:-300}"
mkdir -p "$OUT"

seq2seq preprocess -s es -t en \
    --trainpref "$DATA/train" --validpref "$DATA/valid" --testpref "$DATA/test" \
    --joined-dictionary --tokenizer bpe --vocab-size 2000 \
    --destdir "$OUT/data-bin" --force

seq2seq train "$OUT/data-bin" --arch transformer_small \
    --encoder-layers 2 --decoder-layers 2 --share-all-embeddings \
    --optimizer adam --adam-betas "(0.9, 0.98)" --lr 1e-3 \
    --lr-scheduler inverse_sqrt --warmup-updates 100 \
    --criterion label_smoothed_cross_entropy --label-smoothing 0.1 \
    --max-tokens 4096 --max-update "$MAX_UPDATE" --seed 1 \
    --save-dir "$OUT/checkpoints" --no-epoch-checkpoints --log-interval 50

seq2seq generate --path "$OUT/checkpoints/checkpoint_last.pt" --input "$DATA/test.es" \
    --beam 5 --batch-size 64 > "$OUT/test.hyp"

seq2seq score --sys "$OUT/test.hyp" --ref "$DATA/test.en" --metrics bleu,chrf
