#!/usr/bin/env bash
# Spanish -> English on the Bible corpus, from the corpus to a scored model: the reference workload
# (transformer_small, 798 updates, BLEU 15 ± 1 on the test split: 15.51 and 14.94 measured; docs/benchmarks.md has
# the timings).
#
#   DATA=/path/to/bible-es-en examples/translation/run.sh     # a local copy of the shipped splits
#   DATA=debian examples/translation/run.sh                   # rebuilt from Debian's sword-text packages
#   DATA=... MAX_UPDATE=50 THREADS=1 OUT=/tmp/tr examples/translation/run.sh   # a short smoke run
#
# 1. corpus: exactly the verses of the shipped splits (splits/*.verses, the `.ref` lists), copied from DATA and
#    checked against them, or rebuilt: `mod2imp` exports of the SWORD modules spaRV1909eb (Reina-Valera 1909,
#    package sword-text-sparv) and engKJV2006eb (King James Version, sword-text-kjv), cleaned and cut to those
#    verses (corpus.py). A corpus that does not match the verse lists is refused.
# 2. preprocess: one 8,000-piece BPE vocabulary for both languages.  3. train: transformer_small with the
#    documented defaults (Adam, inverse_sqrt, label smoothing 0.1).  4. generate: beam 5 on test.es.
# 5. score: sacreBLEU against test.en; the last line printed is the BLEU score.
#
# Environment: DATA (default: the shared corpus beside the checkout, if there), OUT (default runs/translation:
# everything is written under it), MAX_UPDATE (default 798), THREADS (default 2: training, decoding, BPE),
# SPLITS (default examples/translation/splits: the verse lists to check against). A second run reuses the
# corpus and DATA_DIR under OUT and resumes training from OUT/checkpoints.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# The shared corpus sits beside the main checkout (../shared) or beside a worktree's parent (../../shared).
for d in "$REPO/../shared" "$REPO/../../shared"; do
    [ -z "${DATA:-}" ] && [ -d "$d/data/bible-es-en" ] && DATA="$d/data/bible-es-en"
done
DATA="${DATA:-}"
OUT="${OUT:-runs/translation}"
MAX_UPDATE="${MAX_UPDATE:-798}"
THREADS="${THREADS:-2}"
SPLITS="${SPLITS:-$HERE/splits}"
PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"

step() { echo "== [$1/5] $2" >&2; }
fail() { echo "Error: $*" >&2; exit 1; }
[ -n "$DATA" ] || fail "no corpus: set DATA=/path/to/bible-es-en (a folder with the shipped splits) or DATA=debian"
command -v seq2seq >/dev/null || fail "seq2seq is not on PATH: pip install -c constraints.txt -e . (see README.md)"
mkdir -p "$OUT"

if [ -f "$OUT/corpus/test.ref" ]; then
    step 1 "corpus: $OUT/corpus (already there)"
elif [ "$DATA" = debian ]; then
    step 1 "corpus: rebuilding from Debian's sword-text packages into $OUT/corpus"
    if ! command -v mod2imp >/dev/null; then
        SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo sudo)
        $SUDO apt-get update && $SUDO apt-get install -y libsword-utils sword-text-sparv sword-text-kjv
    fi
    mkdir -p "$OUT/sword"
    mod2imp spaRV1909eb > "$OUT/sword/es.imp"
    mod2imp engKJV2006eb > "$OUT/sword/en.imp"
    "$PYTHON" "$HERE/corpus.py" sword "$OUT/sword/es.imp" "$OUT/sword/en.imp" "$SPLITS" "$OUT/corpus"
else
    step 1 "corpus: checking $DATA against the verse lists in $SPLITS, copying it to $OUT/corpus"
    [ -d "$DATA" ] ||
        fail "DATA=$DATA: no such folder (give the folder with {train,valid,test}.{es,en,ref}, or DATA=debian)"
    "$PYTHON" "$HERE/corpus.py" check "$DATA" "$SPLITS" "$OUT/corpus"
fi
C="$OUT/corpus"

if [ -f "$OUT/data-bin/meta.json" ]; then
    step 2 "preprocess: $OUT/data-bin (already there)"
else
    step 2 "preprocess: joined BPE vocabulary of 8,000 pieces -> $OUT/data-bin"
    seq2seq preprocess -s es -t en --trainpref "$C/train" --validpref "$C/valid" --testpref "$C/test" \
        --destdir "$OUT/data-bin" --joined-dictionary --tokenizer bpe --vocab-size 8000 --workers "$THREADS" \
        --no-progress
fi

step 3 "train: transformer_small, $MAX_UPDATE updates on $THREADS threads -> $OUT/checkpoints"
seq2seq train "$OUT/data-bin" --arch transformer_small --share-all-embeddings \
    --optimizer adam --adam-betas '(0.9, 0.98)' --lr 1e-3 --lr-scheduler inverse_sqrt --warmup-updates 300 \
    --criterion label_smoothed_cross_entropy --label-smoothing 0.1 --max-tokens 4096 --threads "$THREADS" \
    --seed 1 --max-update "$MAX_UPDATE" --save-dir "$OUT/checkpoints" --no-epoch-checkpoints \
    --disable-validation --log-interval 50 --no-progress

step 4 "generate: beam 5 on $C/test.es -> $OUT/test.hyp"
seq2seq generate --path "$OUT/checkpoints/checkpoint_last.pt" --input "$C/test.es" --beam 5 \
    --threads "$THREADS" --no-progress > "$OUT/test.hyp.tmp"
mv "$OUT/test.hyp.tmp" "$OUT/test.hyp"

step 5 "score: sacreBLEU of $OUT/test.hyp against $C/test.en"
seq2seq score --sys "$OUT/test.hyp" --ref "$C/test.en" --metrics bleu | tee "$OUT/test.score"
