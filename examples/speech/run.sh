#!/usr/bin/env bash
# Speech recognition (English speech -> English text) and speech translation (Spanish speech -> English text) on a
# corpus synthesized with espeak-ng from the Bible corpus's splits (the recipe is in synthesize.py and
# docs/speech.md): install -> synthesize -> preprocess --audio -> train -> generate -> score (WER, BLEU).
#
#   examples/speech/run.sh                      # both tasks, 40 minutes of training each (the benchmark run)
#   TASKS=asr TRAIN=300 TEST=30 MINUTES=3 examples/speech/run.sh  # a short smoke of one task
#
# Everything goes under $OUT (default runs/speech). Steps already done (a synthesized language, a DATA_DIR) are
# skipped on a second run. THREADS (default 2) CPU threads for synthesis, training and decoding. TRAIN, VALID,
# TEST (6000, 100, 300: the recipe) shrink the corpus for a smoke run. ST_FROM_ASR=0 trains speech translation from
# scratch instead of from the recognition checkpoint. PRECISION=bf16 trains with bf16 autocast: 1.6x the updates
# on a CPU with AVX-512 BF16 (same losses to 3 decimals), but many times slower without it; the default is fp32.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# The shared Bible corpus sits beside the main checkout (../shared) or beside a worktree's parent (../../shared).
BIBLE="${BIBLE:-$(for d in "$REPO/../shared" "$REPO/../../shared"; do [ -d "$d/data/bible-es-en" ] && echo "$d/data/bible-es-en" && break; done)}"
[ -n "$BIBLE" ] || { echo "the Bible corpus was not found; set BIBLE=/path/to/bible-es-en" >&2; exit 1; }
OUT="${OUT:-runs/speech}"
TASKS="${TASKS:-asr st}"
MINUTES="${MINUTES:-40}"
THREADS="${THREADS:-2}"
TRAIN="${TRAIN:-6000}"
VALID="${VALID:-100}"
TEST="${TEST:-300}"
PRECISION="${PRECISION:-fp32}"
mkdir -p "$OUT"

# 1. What it needs: espeak-ng (Debian package) and the speech extra.
if ! command -v espeak-ng >/dev/null; then
    SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo sudo)
    $SUDO apt-get update && $SUDO apt-get install -y espeak-ng
fi
python -c "import kaldi_native_fbank, soundfile, jiwer" 2>/dev/null || \
    pip install -c "$REPO/constraints.txt" -e "$REPO[speech]"

lang_of() { [ "$1" = asr ] && echo en || echo es; }

for task in $TASKS; do
    lang="$(lang_of "$task")"
    audio="$OUT/audio/$lang"
    # 2. The corpus: 6,000 train verses (<= 30 words), 100 valid, 300 test; seed 1; 16 kHz mono.
    [ -f "$audio/test.tsv" ] || python "$HERE/synthesize.py" --data "$BIBLE" --out "$OUT/audio" --langs "$lang" \
        --train "$TRAIN" --valid "$VALID" --test "$TEST" --workers "$THREADS"
    # Speech translation starts from the recognition model when there is one (ST_FROM_ASR=1, the default), as
    # fairseq's ST recipes start from an ASR encoder: same English vocabulary, all weights as initialization.
    init=()
    vocab=(--tokenizer unigram --vocab-size 400)
    asr_ckpt="$OUT/checkpoints-asr/checkpoint_best.pt"
    if [ "$task" = st ] && [ "${ST_FROM_ASR:-1}" = 1 ] && [ -f "$asr_ckpt" ]; then
        vocab=(--tgtdict "$OUT/bin-asr/tokenizer.en.json")
        [ -f "$OUT/checkpoints-st/checkpoint_last.pt" ] || init=(--finetune-from-model "$asr_ckpt")
    fi
    # 3. Features (80-dim fbank + utterance CMVN) and a 400-piece unigram vocabulary of the English targets (short
    # pieces: CTC and the decoder see each one often; 1,000 pieces learned more slowly in the 40-minute budget).
    [ -f "$OUT/bin-$task/meta.json" ] || seq2seq preprocess --audio -s "${lang}_speech" -t en \
        --trainpref "$audio/train" --validpref "$audio/valid" --testpref "$audio/test" \
        "${vocab[@]}" --destdir "$OUT/bin-$task"
    # 4. Train for $MINUTES minutes of wall time on $THREADS threads. The recipe is tuned for a 40-minute CPU budget
    # (docs/benchmarks.md): an auxiliary CTC loss on the encoder so that it aligns frames with tokens early, three
    # stride-2 convolutions (time / 8: ~80 encoder positions for a verse's ~55 target pieces) with 256 channels,
    # ~15-utterance batches (about 400 updates an epoch), light dropout and no SpecAugment: in ~6 epochs the model
    # underfits (training and validation losses stay together), so masking only slows it down. checkpoint_best.pt
    # is picked by the decoder's nll: the CTC term of the loss overfits first (docs/benchmarks.md).
    seq2seq train "$OUT/bin-$task" "${init[@]}" --arch s2t_transformer_xs \
        --model-opt conv_kernel_sizes=5,5,5 --model-opt conv_channels=256 \
        --model-opt freq_mask_n=0 --model-opt time_mask_n=0 \
        --encoder-layers 6 --decoder-layers 3 --dropout 0.1 --share-decoder-input-output-embed \
        --optimizer adam --adam-betas "(0.9, 0.98)" --lr 2e-3 --lr-scheduler inverse_sqrt --warmup-updates 400 \
        --criterion label_smoothed_cross_entropy_with_ctc --ctc-weight 1.0 --label-smoothing 0.1 --clip-norm 10 \
        --max-tokens 10000 --seed 1 --threads "$THREADS" --device cpu --precision "$PRECISION" \
        --best-checkpoint-metric nll_loss \
        --stop-time-hours "$(python -c "print($MINUTES / 60)")" --save-interval-updates 500 \
        --keep-interval-updates 1 --no-epoch-checkpoints --log-interval 50 --save-dir "$OUT/checkpoints-$task"
    # 5. Decode the 300 test clips and score them against the English references: WER and BLEU as written, then
    # WER lowercased without punctuation (the usual ASR convention). Recognition decodes jointly with the CTC head
    # (--ctc-weight 0.3, chosen on the valid clips: docs/benchmarks.md); translation with the decoder alone (CTC
    # prefix scores assume an output in the order of the audio).
    joint=()
    [ "$task" = asr ] && joint=(--ctc-weight 0.3)
    seq2seq generate "$OUT/bin-$task" --path "$OUT/checkpoints-$task/checkpoint_best.pt" --beam 5 "${joint[@]}" \
        --batch-size 32 --threads "$THREADS" --device cpu > "$OUT/test-$task.hyp"
    tail -n +2 "$audio/test.tsv" | cut -f4 > "$OUT/test.ref"
    seq2seq score --sys "$OUT/test-$task.hyp" --ref "$OUT/test.ref" --metrics wer,bleu | tee "$OUT/test-$task.score"
    seq2seq score --sys "$OUT/test-$task.hyp" --ref "$OUT/test.ref" --metrics wer --lowercase --wer-remove-punct \
        | tee -a "$OUT/test-$task.score"
done
